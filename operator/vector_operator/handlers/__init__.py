"""Kopf handlers: thin registrations that hand each event to the controller."""
