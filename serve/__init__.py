"""The scoring service on Ray Serve (`app`), its local runner (`run`) and the plain-uvicorn baseline (`baseline`)."""
