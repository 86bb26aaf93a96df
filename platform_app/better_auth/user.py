"""The caller's account: updateUser, changeEmail, deleteUser and listAccounts."""

from rest_framework import serializers
from rest_framework.response import Response

from auth_app import services
from auth_app.addresses import email_key
from auth_app.api.serializers import UserNameField
from auth_app.api.views import PASSWORD, user_agent
from auth_app.mfa import reauthentication_check
from auth_app.models import Account
from platform_app import flows
from sv_sdk.net import client_ip

from .base import BetterAuthApi, Input, signed_out, status_true
from .errors import BetterAuthError
from .origins import redirect_check
from .shapes import account_json, credential_account_json


class UpdateUserApi(BetterAuthApi):
    class InputSerializer(Input):
        name = UserNameField()
        image = serializers.URLField(
            max_length=2000, allow_blank=True, allow_null=True, required=False
        )

    def post(self, request):
        if isinstance(request.data, dict) and "email" in request.data:
            # As better-auth: the address changes only through changeEmail.
            raise BetterAuthError(400, "EMAIL_CAN_NOT_BE_UPDATED", "Email can not be updated")
        changes = self.body(self.InputSerializer)
        if "image" in changes:
            changes["image"] = changes["image"] or ""
        services.user_profile_update(user=request.user, actor=request.user, **changes)
        return status_true()


class ChangeEmailApi(BetterAuthApi):
    """changeEmail through the same flow as an administrator's edit (flows.user_update).

    The new address is the user's at once and unverified: it is mailed a verification
    link, the old address a notice. It takes a recent sign-in, as better-auth's fresh
    session does.
    """

    class InputSerializer(Input):
        newEmail = serializers.EmailField(max_length=254)
        callbackURL = serializers.CharField(max_length=2000, required=False)

    def post(self, request):
        data = self.body(self.InputSerializer)
        redirect_check(data.get("callbackURL"))
        reauthentication_check(session=self.session)
        if email_key(data["newEmail"]) == request.user.email_key:
            raise BetterAuthError(400, "EMAIL_IS_THE_SAME", "Email is the same")
        flows.user_update(user=request.user, actor=request.user, email=data["newEmail"])
        return status_true()


class DeleteUserApi(BetterAuthApi):
    """deleteUser: with the password, or else from a recent sign-in; then user_offboard."""

    class InputSerializer(Input):
        ignored = ("callbackURL", "token")
        password = serializers.CharField(**PASSWORD, required=False)

    def post(self, request):
        data = self.body(self.InputSerializer)
        if "password" in data:
            services.password_check(
                user=request.user,
                password=data["password"],
                ip_address=client_ip(request),
                user_agent=user_agent(request),
            )
        else:
            reauthentication_check(session=self.session)
        flows.user_offboard(user=request.user, actor=request.user)
        return signed_out(request, {"success": True, "message": "User deleted"})


class ListAccountsApi(BetterAuthApi):
    def get(self, request):
        user = request.user
        accounts = [
            account_json(a) for a in Account.objects.filter(user=user).order_by("created_at")
        ]
        if user.has_usable_password():
            accounts.insert(0, credential_account_json(user))
        return Response(accounts)
