"""From tiers to work: tasks, owners, webhooks, the schedule, users."""
