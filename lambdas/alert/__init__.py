"""Alert: segment window changes in; congestion metrics and SNS alerts out."""
