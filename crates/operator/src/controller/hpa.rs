//! The HPA Windlass owns for each ScaledObject (KEDA keda-spec §2.2), built as a pure function.
