"""What a scoring request is: a real application (the default), a test (load, fuzzing, smoke) or the app's preview.
Every kind is scored alike; only production traffic counts in monitoring."""

TRAFFIC = ("production", "test", "preview")
PRODUCTION = TRAFFIC[0]
