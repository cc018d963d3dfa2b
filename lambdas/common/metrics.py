"""Names of the platform's custom CloudWatch metrics: one definition for the functions and the alarms.

The namespace is per environment (``TAP/Traffic/<suffix>``) and reaches the functions as the
``METRIC_NAMESPACE`` environment variable. Dimensions are low-cardinality on purpose: never a sensor.
"""

# Published by the processor through the CloudWatch embedded metric format (its logs).
READINGS_ACCEPTED = "ReadingsAccepted"
DUPLICATE_READINGS = "DuplicateReadings"
RECORDS_QUARANTINED = "RecordsQuarantined"
REASON_DIMENSION = "Reason"

# Published by the alert function with PutMetricData.
SEGMENT_WINDOWS = "SegmentWindows"
LEVEL_DIMENSION = "Level"
CONGESTION_ALERTS = "CongestionAlerts"

# Published by the silence check with PutMetricData (every run): sensors silent at the time of the run.
SILENT_SENSORS = "SilentSensors"

# Published by the pre-provisioning hook through EMF (its logs): one per RegisterThing it answers.
PROVISIONING_ALLOWED = "ProvisioningAllowed"
PROVISIONING_REFUSED = "ProvisioningRefused"
"""With the ``Reason`` dimension (``lambdas.provisioning.logic.REFUSALS``)."""
