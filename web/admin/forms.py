"""Admin forms (flask-wtf: CSRF token included)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from ..accounts import USER_ROLES

__all__ = ["CreateUserForm", "ActionForm"]


class CreateUserForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired("Enter a username."), Length(max=63)])
    password = PasswordField("Initial password", validators=[DataRequired("Enter a password."), Length(max=1024)])
    party = SelectField("Party", validators=[DataRequired("Choose the party the user acts for.")])
    role = SelectField("Role", choices=list(USER_ROLES))


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""
