"""deploy/: the Grafana dashboard, Prometheus rules and scrape example, generated from the metric dictionary."""
