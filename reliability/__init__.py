"""`make reliability`: faults, races, fuzzing, a database restart under load, and a soak run."""
