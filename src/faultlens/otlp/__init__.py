"""The OTLP/HTTP receiver's decoding and mapping: OTLP traces and logs -> raw events and evidence spans."""
