"""`make chaos`: faults at seeded random moments during migrations, and what must still hold."""
