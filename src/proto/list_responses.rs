//! `flotilla.v1.ListClustersResponse` and `ListPodsResponse`, written by hand instead of
//! generated (build.rs maps the messages here) for one reason: a server can send entries it
//! encoded before (clusters kept from an earlier page, pods kept encoded by a watch cache) as
//! bytes. On the wire each is the generated message exactly; to a reader it has the generated
//! fields, and decoding fills only those.

use bytes::{Buf, BufMut, Bytes};
use prost::{
    DecodeError, Message,
    encoding::{DecodeContext, WireType, int32, message, skip_field, string},
};

use super::{Cluster, Pod};

/// A list response of the shape `repeated Item items = 1; string next_page_token = 2;
/// int32 total_size = 3;`, with the items' field named `$items`, and `$encoded` for entries of
/// it encoded before.
macro_rules! list_response {
    ($(#[$doc:meta])* $name:ident, $item:ty, $items:ident, $encoded:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Default, Debug)]
        pub struct $name {
            pub $items: Vec<$item>,
            pub next_page_token: String,
            /// How many match (see the message in the proto).
            pub total_size: i32,
            /// More entries of field 1 already encoded, each with its tag and length: sent after
            /// the typed ones. Set only by a server; always empty in a decoded message.
            pub $encoded: Bytes,
        }

        impl Message for $name {
            fn encode_raw(&self, buf: &mut impl BufMut) {
                message::encode_repeated(1, &self.$items, buf);
                buf.put_slice(&self.$encoded);
                if !self.next_page_token.is_empty() {
                    string::encode(2, &self.next_page_token, buf);
                }
                if self.total_size != 0 {
                    int32::encode(3, &self.total_size, buf);
                }
            }

            fn merge_field(
                &mut self,
                tag: u32,
                wire_type: WireType,
                buf: &mut impl Buf,
                ctx: DecodeContext,
            ) -> Result<(), DecodeError> {
                let named = |field: &'static str| {
                    move |mut e: DecodeError| {
                        e.push(stringify!($name), field);
                        e
                    }
                };
                match tag {
                    1 => message::merge_repeated(wire_type, &mut self.$items, buf, ctx)
                        .map_err(named(stringify!($items))),
                    2 => string::merge(wire_type, &mut self.next_page_token, buf, ctx)
                        .map_err(named("next_page_token")),
                    3 => int32::merge(wire_type, &mut self.total_size, buf, ctx)
                        .map_err(named("total_size")),
                    _ => skip_field(wire_type, tag, buf, ctx),
                }
            }

            fn encoded_len(&self) -> usize {
                message::encoded_len_repeated(1, &self.$items)
                    + self.$encoded.len()
                    + if self.next_page_token.is_empty() {
                        0
                    } else {
                        string::encoded_len(2, &self.next_page_token)
                    }
                    + if self.total_size == 0 {
                        0
                    } else {
                        int32::encoded_len(3, &self.total_size)
                    }
            }

            fn clear(&mut self) {
                self.$items.clear();
                self.next_page_token.clear();
                self.total_size = 0;
                self.$encoded = Bytes::new();
            }
        }
    };
}

list_response!(
    /// `flotilla.v1.ListClustersResponse`: clusters kept from an earlier page go in
    /// `encoded_clusters` ([`append_cluster`]).
    ListClustersResponse,
    Cluster,
    clusters,
    encoded_clusters
);

list_response!(
    /// `flotilla.v1.ListPodsResponse`: pods a watch cache keeps encoded go in `encoded_pods`
    /// ([`append_entry`]).
    ListPodsResponse,
    Pod,
    pods,
    encoded_pods
);

/// Appends an encoded message to `page` as one entry of field 1 of a list response: its tag,
/// its length, then its bytes.
pub fn append_entry(page: &mut impl BufMut, encoded: &[u8]) {
    prost::encoding::encode_key(1, WireType::LengthDelimited, page);
    prost::encoding::encode_varint(encoded.len() as u64, page);
    page.put_slice(encoded);
}

/// Appends `cluster` to `page` as one entry of a `ListClustersResponse.clusters`, for
/// [`ListClustersResponse::encoded_clusters`]: its tag, its length, the bytes of `stored` (a
/// `Cluster` encoded without some of its fields) and then `rest` (the missing fields, as a
/// `Cluster` that sets only those). Protobuf readers take fields in any order, and a field that
/// appears twice in a message merges, so the entry reads as one cluster with both parts.
pub fn append_cluster(page: &mut impl BufMut, stored: &[u8], rest: &Cluster) {
    let rest_len = rest.encoded_len();
    prost::encoding::encode_key(1, WireType::LengthDelimited, page);
    prost::encoding::encode_varint((stored.len() + rest_len) as u64, page);
    page.put_slice(stored);
    rest.encode_raw(page);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{ClusterStatus, Warning};

    fn cluster(id: &str) -> Cluster {
        Cluster {
            id: id.into(),
            display_name: format!("Cluster {id}"),
            labels: [("env".to_string(), "prod".to_string())].into(),
            provider: "ack".into(),
            etag: "\"1-2\"".into(),
            ..Default::default()
        }
    }

    fn status(version: &str) -> ClusterStatus {
        ClusterStatus {
            reachable: true,
            kubernetes_version: version.into(),
            node_count: 3,
            warnings: vec![Warning {
                code: "INSECURE_TLS".into(),
                message: "m".into(),
            }],
            ..Default::default()
        }
    }

    /// The bytes a generated message would give, decoded by the generated decoder of every
    /// client (prost's, here through `Cluster`), read back as the same clusters in order.
    #[test]
    fn encoded_clusters_read_as_clusters_after_the_typed_ones() {
        let mut page = bytes::BytesMut::new();
        for (id, version) in [("b", "v1.30.1"), ("c", "v1.31.0")] {
            let stored = cluster(id).encode_to_vec();
            let rest = Cluster {
                status: Some(status(version)),
                ..Default::default()
            };
            append_cluster(&mut page, &stored, &rest);
        }
        let message = ListClustersResponse {
            clusters: vec![cluster("a")],
            next_page_token: "next".into(),
            total_size: 3,
            encoded_clusters: page.freeze(),
        };
        let bytes = message.encode_to_vec();
        assert_eq!(bytes.len(), message.encoded_len());
        let decoded = ListClustersResponse::decode(bytes.as_slice()).unwrap();
        let expected = ListClustersResponse {
            clusters: vec![
                cluster("a"),
                Cluster {
                    status: Some(status("v1.30.1")),
                    ..cluster("b")
                },
                Cluster {
                    status: Some(status("v1.31.0")),
                    ..cluster("c")
                },
            ],
            next_page_token: "next".into(),
            total_size: 3,
            encoded_clusters: Bytes::new(),
        };
        assert_eq!(decoded, expected);
        // The same as encoding the expected message in full, field for field.
        assert_eq!(
            ListClustersResponse::decode(expected.encode_to_vec().as_slice()).unwrap(),
            expected
        );
    }

    /// Pods encoded one by one and appended read back as the pods, after the typed ones, and
    /// the message is byte for byte the one with every pod typed.
    #[test]
    fn encoded_pods_read_as_pods_after_the_typed_ones() {
        let pod = |name: &str| Pod {
            namespace: "shop".into(),
            name: name.into(),
            labels: [("app".to_string(), "web".to_string())].into(),
            containers: vec![crate::proto::ContainerStatus {
                name: "app".into(),
                restart_count: 2,
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut page = bytes::BytesMut::new();
        for name in ["b", "c"] {
            append_entry(&mut page, &pod(name).encode_to_vec());
        }
        let message = ListPodsResponse {
            pods: vec![pod("a")],
            next_page_token: "next".into(),
            total_size: 3,
            encoded_pods: page.freeze(),
        };
        let typed = ListPodsResponse {
            pods: vec![pod("a"), pod("b"), pod("c")],
            next_page_token: "next".into(),
            total_size: 3,
            encoded_pods: Bytes::new(),
        };
        let bytes = message.encode_to_vec();
        assert_eq!(bytes.len(), message.encoded_len());
        assert_eq!(bytes, typed.encode_to_vec());
        assert_eq!(ListPodsResponse::decode(bytes.as_slice()).unwrap(), typed);
        let err = ListPodsResponse::decode(&[0x0a, 0x02, 0x08][..]).unwrap_err();
        assert!(err.to_string().contains("ListPodsResponse.pods"), "{err}");
    }

    #[test]
    fn an_empty_page_encodes_to_nothing_and_unknown_fields_are_skipped() {
        assert!(ListClustersResponse::default().encode_to_vec().is_empty());
        // Field 9 (unknown, varint 7) then total_size 2.
        let decoded = ListClustersResponse::decode(&[0x48, 0x07, 0x18, 0x02][..]).unwrap();
        assert_eq!(decoded.total_size, 2);
    }

    #[test]
    fn a_bad_field_is_named() {
        // total_size sent as a string.
        let err = ListClustersResponse::decode(&[0x1a, 0x01, b'x'][..]).unwrap_err();
        assert!(
            err.to_string().contains("ListClustersResponse.total_size"),
            "{err}"
        );
    }
}
