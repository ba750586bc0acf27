"""Browser tests: the console in headless Chromium, against a seeded SQLite database."""
