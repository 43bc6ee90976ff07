"""Read side: SQL aggregates and Plotly figures for the Monitoring tab."""
