"""Forms of the group, account and set-password pages (checks of one field here; the rules
across records in ``operations/groups.py`` and ``operations/accounts.py``)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from mapservice.web.forms import PHONE


class GroupForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    unit_id = SelectField(_l("Member unit"), choices=[], validate_choice=True)
    contact_name = StringField(_l("Contact person"), validators=[Optional(), Length(max=60)])
    contact_phone = StringField(_l("Phone"), validators=[Optional(), PHONE])
    contact_email = StringField(_l("E-mail"), validators=[Optional(), Length(max=120)])


class UserForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(min=3, max=60)])
    role = SelectField(_l("Role"), choices=[], validate_choice=True)
    unit_id = SelectField(_l("Member unit"), choices=[], validate_choice=False)
    group_id = SelectMultipleField(_l("Youth groups"), choices=[], validate_choice=False)
    display_name = StringField(_l("Name"), validators=[Optional(), Length(max=60)])
    phone = StringField(_l("Phone"), validators=[Optional(), PHONE])
    email = StringField(_l("E-mail"), validators=[Optional(), Length(max=120)])


class BookerGroupsForm(FlaskForm):
    group_id = SelectMultipleField(_l("Youth groups"), choices=[], validate_choice=False)


class ContactForm(FlaskForm):
    display_name = StringField(_l("Name"), validators=[DataRequired(), Length(max=60)])
    phone = StringField(_l("Phone"), validators=[Optional(), PHONE])
    email = StringField(_l("E-mail"), validators=[Optional(), Length(max=120)])


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=128)])
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=128)])


class SetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=128)])
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )
