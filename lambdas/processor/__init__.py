"""Processor: Kinesis readings in; sensor and segment state out; bad records quarantined."""
