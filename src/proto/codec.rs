//! The protobuf codec of every service. It is tonic-prost's, except that a request that does not
//! decode is the caller's mistake: INVALID_ARGUMENT naming the field, never INTERNAL.

use std::marker::PhantomData;

use prost::Message;
use tonic::{
    Code, Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::ProstEncoder;
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Debug, Clone)]
pub struct ProstCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for ProstCodec<T, U> {
    fn default() -> Self {
        ProstCodec { _pd: PhantomData }
    }
}

impl<T, U> Codec for ProstCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder { _pd: PhantomData }
    }
}

#[derive(Debug, Clone)]
pub struct ProstDecoder<U> {
    _pd: PhantomData<U>,
}

impl<U: Message + Default> Decoder for ProstDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|err| malformed(&err))
    }
}

/// prost describes the failure as "failed to decode Protobuf message: Msg.field: reason"; the
/// field path becomes the BadRequest field.
fn malformed(err: &prost::DecodeError) -> Status {
    let text = err.to_string();
    let detail = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(&text);
    // Each "Message.field" segment is one level of nesting; the rest is the reason.
    let field = detail
        .split(": ")
        .map_while(|segment| {
            let (message, field) = segment.split_once('.')?;
            let ident =
                |s: &str| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_');
            (ident(message) && ident(field)).then(|| field.to_string())
        })
        .collect::<Vec<_>>()
        .join(".");
    Status::with_error_details(
        Code::InvalidArgument,
        format!("the request is not a valid protobuf message: {detail}"),
        ErrorDetails::with_bad_request_violation(field, format!("does not decode: {detail}")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ListClustersRequest;

    #[test]
    fn wrong_wire_type_names_the_field() {
        // Field 1 (page_size, varint) sent as a length-delimited string.
        let bytes = [0x0a_u8, 0x02, b'h', b'i'];
        let err = ListClustersRequest::decode(&bytes[..]).unwrap_err();
        let status = malformed(&err);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let field = &details.bad_request().unwrap().field_violations[0].field;
        assert_eq!(field, "page_size");
    }
}
