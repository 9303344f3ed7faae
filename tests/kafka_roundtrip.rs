//! An envelope travels through a real Kafka-protocol broker (tansu) byte for byte, and a
//! consumer group's explicit offset commit holds across a consumer restart.

use crate::util::broker;
use std::time::Duration;
use vigie_record::bus::{BusConfig, Publisher, Subscriber};
use vigie_record::Envelope;

fn envelope(n: u32, text: &str) -> Envelope {
    vigie_record::fixtures::envelope(&n.to_string(), text)
}

async fn next(sub: &Subscriber) -> vigie_record::bus::Delivery {
    tokio::time::timeout(Duration::from_secs(60), sub.next())
        .await
        .expect("no message within 60s")
        .expect("consume")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_round_trips_and_committed_offset_survives_restart() {
    let broker = broker();
    let config = BusConfig::new(broker.address());
    let topic = "vigie.test.roundtrip";
    config.ensure_topics(&[topic], 1).await.unwrap();
    // Creating an existing topic is not an error.
    config.ensure_topics(&[topic], 1).await.unwrap();

    let publisher = Publisher::new(&config, topic).unwrap();
    let first = envelope(
        1,
        "Incendie rue de la République, « fumée » noire — évitez le secteur 🔥",
    );
    let at = publisher.publish(&first).await.unwrap();
    assert_eq!(at.topic, topic);

    let sub = Subscriber::new(&config, "vigie-test-group", &[topic]).unwrap();
    let got = next(&sub).await;
    assert_eq!(got.coords, at);
    assert_eq!(got.key.as_deref(), Some(first.post.id.as_str().as_bytes()));
    assert_eq!(
        got.payload,
        first.to_json(),
        "payload must come back byte-identical"
    );
    assert_eq!(Envelope::from_json(&got.payload).unwrap(), first);
    sub.commit(std::slice::from_ref(&got.coords)).unwrap();
    drop(sub);

    let second = envelope(2, "Tout est calme ce matin.");
    let at2 = publisher.publish(&second).await.unwrap();
    assert_eq!(at2.offset, at.offset + 1);

    // A new member of the same group resumes after the committed offset: it sees the second
    // envelope, not the first again.
    let sub = Subscriber::new(&config, "vigie-test-group", &[topic]).unwrap();
    let got = next(&sub).await;
    assert_eq!(got.coords, at2);
    assert_eq!(got.payload, second.to_json());

    // A different group starts from the beginning.
    let other = Subscriber::new(&config, "vigie-other-group", &[topic]).unwrap();
    assert_eq!(next(&other).await.coords, at);
}
