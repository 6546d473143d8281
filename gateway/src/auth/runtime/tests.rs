use std::sync::Arc;

use super::*;
use crate::auth::keys::digest;
use crate::auth::{hash_key, now_secs};

fn record(id: &str, secret: &str) -> RuntimeKey {
    RuntimeKey {
        id: id.into(),
        name: format!("{id}-name"),
        sha256: hash_key(secret),
        previous_sha256: Vec::new(),
        tenant: "t".into(),
        models: vec!["*".into()],
        limits: LimitsConfig::default(),
        budget: None,
        expires_at: None,
        metadata: BTreeMap::new(),
        created_at: 0,
        rotated_at: None,
        revoked_at: None,
        revision: 0,
    }
}

#[tokio::test]
async fn create_rotate_revoke_and_expire() {
    let keys = RuntimeKeys::new(Arc::new(MemoryStore::default()), Arc::default());
    let now = now_secs();
    keys.create(record("key_1", "sk-one")).await.unwrap();
    let c = keys.lookup(&digest("sk-one"), now).unwrap().unwrap();
    assert_eq!((c.key_id.as_str(), &*c.tenant), ("key_1", "t"));
    assert!(keys.lookup(&digest("sk-none"), now).unwrap().is_none());

    keys.update("key_1", |k| k.rotate(hash_key("sk-two"), now))
        .await
        .unwrap()
        .unwrap();
    let e = keys.lookup(&digest("sk-one"), now).unwrap_err();
    assert!(e.to_string().contains("revoked"), "{e}");
    assert!(keys.lookup(&digest("sk-two"), now).unwrap().is_some());

    keys.update("key_1", |k| k.expires_at = Some(now - 1))
        .await
        .unwrap();
    let e = keys.lookup(&digest("sk-two"), now).unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");

    keys.update("key_1", |k| k.revoked_at = Some(now))
        .await
        .unwrap();
    let e = keys.lookup(&digest("sk-two"), now).unwrap_err();
    assert!(e.to_string().contains("revoked"), "{e}");
    assert_eq!(keys.records()[0].status(now), "revoked");
    assert!(keys.update("key_9", |_| {}).await.unwrap().is_none());
}

#[tokio::test]
async fn a_new_tenant_table_rebuilds_the_index() {
    let keys = RuntimeKeys::new(Arc::new(MemoryStore::default()), Arc::default());
    keys.create(record("key_1", "sk-one")).await.unwrap();
    let c = keys.lookup(&digest("sk-one"), 0).unwrap().unwrap();
    assert_eq!(c.tenant_info.residency, None);
    keys.set_tenants(Arc::new(Tenants::from_config(&[
        crate::config::TenantConfig {
            name: "t".into(),
            residency: Some("eu".into()),
            region: None,
            attributes: BTreeMap::new(),
            limits: LimitsConfig::default(),
            budget: None,
        },
    ])));
    let c = keys.lookup(&digest("sk-one"), 0).unwrap().unwrap();
    assert_eq!(c.tenant_info.residency.as_deref(), Some("eu"));
}

#[test]
fn rotation_remembers_a_bounded_history() {
    let mut k = record("key_1", "sk-0");
    for i in 1..10 {
        k.rotate(hash_key(&format!("sk-{i}")), i);
    }
    assert_eq!(k.previous_sha256.len(), REMEMBERED_ROTATIONS);
    assert_eq!(k.previous_sha256.last(), Some(&hash_key("sk-8")));
    assert_eq!(k.rotated_at, Some(9));
}

#[tokio::test]
async fn replace_only_writes_over_the_revision_it_read() {
    let store = MemoryStore::default();
    store.put(&record("key_1", "sk-one")).await.unwrap();
    let mut k = store.get("key_1").await.unwrap().unwrap();
    k.name = "first".into();
    k.revision = 1;
    assert!(store.replace(&k, 0).await.unwrap());
    k.name = "stale".into();
    k.revision = 1;
    assert!(
        !store.replace(&k, 0).await.unwrap(),
        "a stale write went through"
    );
    assert_eq!(store.get("key_1").await.unwrap().unwrap().name, "first");
}
