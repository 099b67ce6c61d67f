"""A tiny offline model server for driving real agent CLIs in e2e captures.

See core.py for the plug-in interface and the scenario modes.
"""
