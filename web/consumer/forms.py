"""The home page's forms (flask-wtf: CSRF token included)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired

__all__ = ["ScanForm"]


class ScanForm(FlaskForm):
    photo = FileField("Photo of the code", validators=[FileRequired("Choose or take a photo of the code first.")])
