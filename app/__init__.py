"""The Streamlit tester app: scores applicants through the scoring service's HTTP API, never with the model itself.

`streamlit run app/streamlit_app.py` (from the repository root); `SCORING_API_URL` names the service, `PROJECT_ROOT`
the project whose prepared test applicants are offered.
"""
