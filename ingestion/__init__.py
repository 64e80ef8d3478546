"""Absence events in from HR/payroll: one path for the API and for file imports."""
