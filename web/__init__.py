"""The workspace: server-rendered pages for coordinators, managers and employees."""
