//! The part of ONNX's protobuf schema (onnx/onnx.proto, IR version 3 and later) that an image
//! classifier uses, read straight from the wire format. A hand-written reader rather than
//! `prost` + `candle-onnx`'s generated code: that needs `protoc` at build time on every machine
//! that builds wna, for the ~15 fields read here. Every read is bounds-checked, so a truncated
//! or corrupt file is an error that says where it broke, never a panic.

use crate::error::{Error, Result};

/// ONNX's `TensorProto.DataType` values wna reads.
pub const FLOAT: i32 = 1;
pub const INT32: i32 = 6;
pub const INT64: i32 = 7;
pub const DOUBLE: i32 = 11;

#[derive(Debug, Default)]
pub struct ModelProto {
    pub ir_version: i64,
    pub producer: String,
    /// The default domain's opset version (0 when the file does not say).
    pub opset: i64,
    pub graph: GraphProto,
}

#[derive(Debug, Default)]
pub struct GraphProto {
    pub name: String,
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    pub inputs: Vec<ValueInfo>,
    pub outputs: Vec<ValueInfo>,
}

#[derive(Debug, Default, Clone)]
pub struct NodeProto {
    pub name: String,
    pub op_type: String,
    pub domain: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attributes: Vec<AttributeProto>,
}

#[derive(Debug, Default, Clone)]
pub struct AttributeProto {
    pub name: String,
    pub f: Option<f32>,
    pub i: Option<i64>,
    pub s: Vec<u8>,
    pub t: Option<TensorProto>,
    pub floats: Vec<f32>,
    pub ints: Vec<i64>,
}

#[derive(Debug, Default, Clone)]
pub struct TensorProto {
    pub name: String,
    pub dims: Vec<i64>,
    pub data_type: i32,
    pub float_data: Vec<f32>,
    pub int32_data: Vec<i32>,
    pub int64_data: Vec<i64>,
    pub double_data: Vec<f64>,
    pub raw_data: Vec<u8>,
    /// Set when the values live in a separate file (`data_location = EXTERNAL`).
    pub external: bool,
}

/// A graph input or output: its name and, when the file states it, its shape (`None` for a
/// symbolic dimension such as the batch).
#[derive(Debug, Default, Clone)]
pub struct ValueInfo {
    pub name: String,
    pub shape: Option<Vec<Option<i64>>>,
}

/// Reads an ONNX model from its bytes.
pub fn parse_model(bytes: &[u8]) -> Result<ModelProto> {
    let mut model = ModelProto::default();
    let mut r = Reader::new(bytes);
    let mut has_graph = false;
    while let Some((field, value)) = r.next_field()? {
        match (field, value) {
            (1, Value::Varint(v)) => model.ir_version = v as i64,
            (2, Value::Bytes(b)) => model.producer = string(b),
            (7, Value::Bytes(b)) => {
                model.graph = parse_graph(b)?;
                has_graph = true;
            }
            (8, Value::Bytes(b)) => {
                // OperatorSetIdProto: domain 1, version 2; "" and "ai.onnx" are the default.
                let (mut domain, mut version) = (String::new(), 0);
                let mut o = Reader::new(b);
                while let Some((f, v)) = o.next_field()? {
                    match (f, v) {
                        (1, Value::Bytes(b)) => domain = string(b),
                        (2, Value::Varint(v)) => version = v as i64,
                        _ => {}
                    }
                }
                if domain.is_empty() || domain == "ai.onnx" {
                    model.opset = version;
                }
            }
            _ => {}
        }
    }
    if !has_graph {
        return Err(Error::InvalidArgument(
            "the file has no graph (is it an ONNX model?)".into(),
        ));
    }
    Ok(model)
}

fn parse_graph(bytes: &[u8]) -> Result<GraphProto> {
    let mut g = GraphProto::default();
    let mut r = Reader::new(bytes);
    while let Some((field, value)) = r.next_field()? {
        if let Value::Bytes(b) = value {
            match field {
                1 => g.nodes.push(parse_node(b)?),
                2 => g.name = string(b),
                5 => g.initializers.push(parse_tensor(b)?),
                11 => g.inputs.push(parse_value_info(b)?),
                12 => g.outputs.push(parse_value_info(b)?),
                _ => {}
            }
        }
    }
    Ok(g)
}

fn parse_node(bytes: &[u8]) -> Result<NodeProto> {
    let mut n = NodeProto::default();
    let mut r = Reader::new(bytes);
    while let Some((field, value)) = r.next_field()? {
        if let Value::Bytes(b) = value {
            match field {
                1 => n.inputs.push(string(b)),
                2 => n.outputs.push(string(b)),
                3 => n.name = string(b),
                4 => n.op_type = string(b),
                5 => n.attributes.push(parse_attribute(b)?),
                7 => n.domain = string(b),
                _ => {}
            }
        }
    }
    Ok(n)
}

fn parse_attribute(bytes: &[u8]) -> Result<AttributeProto> {
    let mut a = AttributeProto::default();
    let mut r = Reader::new(bytes);
    while let Some((field, value)) = r.next_field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => a.name = string(b),
            (2, Value::Fixed32(v)) => a.f = Some(f32::from_bits(v)),
            (3, Value::Varint(v)) => a.i = Some(v as i64),
            (4, Value::Bytes(b)) => a.s = b.to_vec(),
            (5, Value::Bytes(b)) => a.t = Some(parse_tensor(b)?),
            (7, Value::Bytes(b)) => a.floats.extend(packed_f32(b)?),
            (7, Value::Fixed32(v)) => a.floats.push(f32::from_bits(v)),
            (8, Value::Bytes(b)) => a
                .ints
                .extend(packed_varints(b)?.into_iter().map(|v| v as i64)),
            (8, Value::Varint(v)) => a.ints.push(v as i64),
            _ => {}
        }
    }
    Ok(a)
}

fn parse_tensor(bytes: &[u8]) -> Result<TensorProto> {
    let mut t = TensorProto::default();
    let mut r = Reader::new(bytes);
    while let Some((field, value)) = r.next_field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => t
                .dims
                .extend(packed_varints(b)?.into_iter().map(|v| v as i64)),
            (1, Value::Varint(v)) => t.dims.push(v as i64),
            (2, Value::Varint(v)) => t.data_type = v as i32,
            (4, Value::Bytes(b)) => t.float_data.extend(packed_f32(b)?),
            (4, Value::Fixed32(v)) => t.float_data.push(f32::from_bits(v)),
            (5, Value::Bytes(b)) => t
                .int32_data
                .extend(packed_varints(b)?.into_iter().map(|v| v as i32)),
            (5, Value::Varint(v)) => t.int32_data.push(v as i32),
            (7, Value::Bytes(b)) => t
                .int64_data
                .extend(packed_varints(b)?.into_iter().map(|v| v as i64)),
            (7, Value::Varint(v)) => t.int64_data.push(v as i64),
            (8, Value::Bytes(b)) => t.name = string(b),
            (9, Value::Bytes(b)) => t.raw_data = b.to_vec(),
            (10, Value::Bytes(b)) => t.double_data.extend(packed_f64(b)?),
            (10, Value::Fixed64(v)) => t.double_data.push(f64::from_bits(v)),
            (14, Value::Varint(v)) => t.external = v == 1,
            _ => {}
        }
    }
    Ok(t)
}

fn parse_value_info(bytes: &[u8]) -> Result<ValueInfo> {
    let mut info = ValueInfo::default();
    let mut r = Reader::new(bytes);
    while let Some((field, value)) = r.next_field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => info.name = string(b),
            // TypeProto: tensor_type 1 -> TypeProto.Tensor: shape 2 -> TensorShapeProto: dim 1.
            (2, Value::Bytes(b)) => {
                let Some(tensor) = sub_message(b, 1)? else {
                    continue;
                };
                let Some(shape) = sub_message(tensor, 2)? else {
                    continue;
                };
                let mut dims = Vec::new();
                let mut s = Reader::new(shape);
                while let Some((f, v)) = s.next_field()? {
                    if let (1, Value::Bytes(dim)) = (f, v) {
                        // Dimension: dim_value 1 (a number) or dim_param 2 (a symbol).
                        let mut d = Reader::new(dim);
                        let mut value = None;
                        while let Some((f, v)) = d.next_field()? {
                            if let (1, Value::Varint(n)) = (f, v) {
                                value = Some(n as i64);
                            }
                        }
                        dims.push(value);
                    }
                }
                info.shape = Some(dims);
            }
            _ => {}
        }
    }
    Ok(info)
}

/// The first length-delimited field `field` of a message.
fn sub_message(bytes: &[u8], field: u32) -> Result<Option<&[u8]>> {
    let mut r = Reader::new(bytes);
    while let Some((f, v)) = r.next_field()? {
        if let (true, Value::Bytes(b)) = (f == field, v) {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

fn string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn packed_varints(b: &[u8]) -> Result<Vec<u64>> {
    let mut r = Reader::new(b);
    let mut out = Vec::new();
    while !r.done() {
        out.push(r.varint()?);
    }
    Ok(out)
}

fn packed_f32(b: &[u8]) -> Result<Vec<f32>> {
    if !b.len().is_multiple_of(4) {
        return Err(corrupt(
            "a packed float list whose length is not a multiple of 4",
        ));
    }
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn packed_f64(b: &[u8]) -> Result<Vec<f64>> {
    if !b.len().is_multiple_of(8) {
        return Err(corrupt(
            "a packed double list whose length is not a multiple of 8",
        ));
    }
    Ok(b.chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

fn corrupt(what: &str) -> Error {
    Error::InvalidArgument(format!(
        "the file is truncated or not an ONNX model ({what})"
    ))
}

/// One field's value in the wire format.
enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// A cursor over one message's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.bytes.get(self.at) else {
                return Err(corrupt("a number runs past the end"));
            };
            self.at += 1;
            value |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt("a number longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| corrupt("a field runs past the end"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    /// The next field number and value, or `None` at the end of the message.
    fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>> {
        if self.done() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = (key >> 3) as u32;
        if field == 0 {
            return Err(corrupt("field number 0"));
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().expect("8 bytes"),
            )),
            2 => {
                let n = self.varint()?;
                let n = usize::try_from(n).map_err(|_| corrupt("a length beyond memory"))?;
                Value::Bytes(self.take(n)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().expect("4 bytes"),
            )),
            other => return Err(corrupt(&format!("wire type {other}"))),
        };
        Ok(Some((field, value)))
    }
}

impl TensorProto {
    /// The values as f32 (from float, double, int32 or int64 data, raw or typed).
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        if self.external {
            crate::bail!(
                InvalidArgument,
                "tensor {} is stored in an external data file; re-export the model as one file \
                 (torch.onnx.export without external_data)",
                self.name
            );
        }
        let raw = &self.raw_data;
        let values: Vec<f32> = match self.data_type {
            FLOAT if !raw.is_empty() => packed_f32(raw)?,
            FLOAT => self.float_data.clone(),
            DOUBLE if !raw.is_empty() => packed_f64(raw)?.into_iter().map(|v| v as f32).collect(),
            DOUBLE => self.double_data.iter().map(|&v| v as f32).collect(),
            INT64 | INT32 => self.to_i64()?.into_iter().map(|v| v as f32).collect(),
            other => crate::bail!(
                InvalidArgument,
                "tensor {} has data type {other}; wna reads float, double and integer tensors",
                self.name
            ),
        };
        self.check_count(values.len())?;
        Ok(values)
    }

    /// The values as i64 (shapes, axes).
    pub fn to_i64(&self) -> Result<Vec<i64>> {
        let raw = &self.raw_data;
        let values: Vec<i64> = match self.data_type {
            INT64 if !raw.is_empty() => {
                if !raw.len().is_multiple_of(8) {
                    return Err(corrupt(
                        "raw int64 data whose length is not a multiple of 8",
                    ));
                }
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect()
            }
            INT64 => self.int64_data.clone(),
            INT32 if !raw.is_empty() => {
                if !raw.len().is_multiple_of(4) {
                    return Err(corrupt(
                        "raw int32 data whose length is not a multiple of 4",
                    ));
                }
                raw.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                    .collect()
            }
            INT32 => self.int32_data.iter().map(|&v| v as i64).collect(),
            _ => self.to_f32()?.into_iter().map(|v| v as i64).collect(),
        };
        self.check_count(values.len())?;
        Ok(values)
    }

    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().map(|&d| d.max(0) as usize).collect()
    }

    fn check_count(&self, n: usize) -> Result<()> {
        let want: usize = self.shape().iter().product();
        if n != want {
            crate::bail!(
                InvalidArgument,
                "tensor {} holds {n} values for its shape {:?} ({want}); the file is truncated or \
                 corrupt",
                self.name,
                self.dims
            );
        }
        Ok(())
    }
}
