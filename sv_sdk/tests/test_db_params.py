"""Connecting with psycopg outside Django: the URL's libpq options go along, Django's do not."""

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sv_sdk.db.params import connect_params


def test_a_databases_sslmode_reaches_the_conninfo_and_the_pool_settings_do_not():
    database = {
        "NAME": "sv",
        "HOST": "db.example.com",
        "PORT": "5433",
        "USER": "sv",
        "PASSWORD": "",
        "OPTIONS": {"sslmode": "require", "pool": {"min_size": 2}},
    }

    conninfo = conninfo_to_dict(make_conninfo(**connect_params(database)))

    assert conninfo == {
        "dbname": "sv",
        "host": "db.example.com",
        "port": "5433",
        "user": "sv",
        "sslmode": "require",
    }
