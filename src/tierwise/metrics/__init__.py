"""Per-customer metrics as of a date, ranks over all customers, customer-base models."""
