"""The evaluation of routines: measures, small-cell suppression, the report."""
