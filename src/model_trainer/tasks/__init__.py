"""What kind of learning a job is: detection, and the ranking, clustering and forecasting tasks."""
