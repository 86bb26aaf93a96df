"""Admin building blocks every app shares."""


class ReadOnlyAdminMixin:
    """Rows shown in the admin but never added or edited there: their services write them.

    For a ModelAdmin or an inline. Deleting stays with the model's delete permission when
    `deletable` is true (a row an operator may withdraw); otherwise it is refused too.
    """

    deletable = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return self.deletable and super().has_delete_permission(request, obj)
