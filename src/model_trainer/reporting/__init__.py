"""What a run reports: the HTML report, plots, the decision record."""
