"""All of it served: who is looking, the catalog of runs, background jobs, housekeeping, warm-up."""
