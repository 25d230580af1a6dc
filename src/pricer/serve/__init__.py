"""Serve any predictor over HTTP: the FastAPI app (app.py), the micro-batcher that groups
concurrent requests into one `predict_details` call (batcher.py), Prometheus metrics
(metrics.py) and the web page (static/index.html)."""
