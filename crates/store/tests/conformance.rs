//! The backend conformance suite, once per backend.

use prossimo_store::conformance_suite;

conformance_suite!(sqlite, Some(Fixture::sqlite()));
conformance_suite!(postgres, Fixture::postgres());
