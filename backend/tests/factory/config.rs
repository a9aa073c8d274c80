//! Bounded roles and configuration: every configuration value validated, the anonymous
//! principal never an admin.

use super::*;

#[test]
fn configuration_values_are_validated() {
    assert_eq!(FactoryConfig::default().validate(), Ok(()));
    let bad = |c: FactoryConfig| match c.validate() {
        Err(FactoryError::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    let d = FactoryConfig::default;
    assert_eq!(
        bad(FactoryConfig {
            daily_cycle_budget: Some(u128::MAX),
            ..d()
        }),
        "daily_cycle_budget"
    );
    assert_eq!(
        bad(FactoryConfig {
            operating_cycles: Some(u128::MAX),
            ..d()
        }),
        "operating_cycles"
    );
    assert_eq!(
        bad(FactoryConfig {
            quote_buffer: 100_000_000_000_000,
            ..d()
        }),
        "quote_buffer"
    );
    assert_eq!(
        bad(FactoryConfig {
            max_in_flight: 0,
            ..d()
        }),
        "max_in_flight"
    );
    assert_eq!(
        bad(FactoryConfig {
            import_calls_in_flight: 1_000,
            ..d()
        }),
        "import_calls_in_flight"
    );
    assert_eq!(
        bad(FactoryConfig {
            step_timeout_seconds: Some(1),
            ..d()
        }),
        "step_timeout_seconds"
    );
    assert_eq!(
        bad(FactoryConfig {
            freezing_threshold_seconds: 0,
            ..d()
        }),
        "freezing_threshold_seconds"
    );
}

#[test]
fn the_anonymous_principal_is_never_an_admin() {
    let mut f = factory();
    assert!(matches!(
        f.set_admin(Principal::anonymous(), true),
        Err(FactoryError::InvalidArgument { .. })
    ));
    assert!(f.admins().is_empty());
    f.set_admin(user(1), true).unwrap();
    assert_eq!(f.admins(), vec![user(1)]);
}
