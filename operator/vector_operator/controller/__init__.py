"""The controller: observe -> decide -> apply for each resource, through the adapters, under one
lock per object."""
