//! Python values to JSON text, and JSON back to Python values.
//!
//! Publications carry `data` as raw JSON text (core's `RawJson`), so a Python value is
//! written straight to text by a serde `Serialize` walk over the Python objects, with no
//! intermediate tree. Only the JSON types are accepted: dict (str keys), list, tuple, str,
//! int, float, bool and None, plus `hubbub.Json` (already encoded). Anything else is a
//! `TypeError` naming the type; NaN and infinities and integers beyond 64 bits are a
//! `ValueError`, as with `json.dumps(allow_nan=False)`.

use hubbub_core::protocol::RawJson;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use std::cell::Cell;

/// How deep `data` may nest. The hub parses bodies with serde_json, which stops at 128
/// levels for the whole body; this leaves room for the request around `data`.
const MAX_DEPTH: usize = 100;

/// Encodes a Python value as JSON text.
pub fn encode(data: &Bound<'_, PyAny>) -> PyResult<RawJson> {
    let failure = Cell::new(None);
    let value = Encoder {
        obj: data,
        depth: 0,
        failure: &failure,
    };
    RawJson::from_value(&value).map_err(|e| {
        failure
            .take()
            .unwrap_or_else(|| PyValueError::new_err(e.to_string()))
    })
}

/// Converts a Python value to a JSON value (for token claims).
pub fn to_value(data: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    let failure = Cell::new(None);
    let value = Encoder {
        obj: data,
        depth: 0,
        failure: &failure,
    };
    serde_json::to_value(&value).map_err(|e| {
        failure
            .take()
            .unwrap_or_else(|| PyValueError::new_err(e.to_string()))
    })
}

/// One Python object on its way to JSON. A Python exception met on the way is kept in
/// `failure` (serde's error type cannot carry it) and raised once the walk has stopped.
struct Encoder<'a, 'py> {
    obj: &'a Bound<'py, PyAny>,
    depth: usize,
    failure: &'a Cell<Option<PyErr>>,
}

impl<'a, 'py> Encoder<'a, 'py> {
    fn child<'b>(&'b self, obj: &'b Bound<'py, PyAny>) -> Encoder<'b, 'py> {
        Encoder {
            obj,
            depth: self.depth + 1,
            failure: self.failure,
        }
    }

    fn fail<E: serde::ser::Error>(&self, err: PyErr) -> E {
        self.failure.set(Some(err));
        E::custom("a Python value could not be encoded")
    }

    fn nest<E: serde::ser::Error>(&self) -> Result<(), E> {
        if self.depth >= MAX_DEPTH {
            return Err(self.fail(PyValueError::new_err(format!(
                "data nests deeper than {MAX_DEPTH} levels (or contains itself)"
            ))));
        }
        Ok(())
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

impl Serialize for Encoder<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let obj = self.obj;
        // The order matters: bool is a subclass of int.
        if let Ok(text) = obj.cast::<PyString>() {
            let text = text.to_cow().map_err(|e| self.fail(e))?;
            return s.serialize_str(&text);
        }
        if obj.is_none() {
            return s.serialize_unit();
        }
        if let Ok(b) = obj.cast::<PyBool>() {
            return s.serialize_bool(b.is_true());
        }
        if let Ok(int) = obj.cast::<PyInt>() {
            if let Ok(v) = int.extract::<i64>() {
                return s.serialize_i64(v);
            }
            if let Ok(v) = int.extract::<u64>() {
                return s.serialize_u64(v);
            }
            return Err(self.fail(PyValueError::new_err(format!(
                "integer {int} does not fit in 64 bits; send it as a string"
            ))));
        }
        if let Ok(float) = obj.cast::<PyFloat>() {
            let v = float.value();
            if !v.is_finite() {
                return Err(self.fail(PyValueError::new_err(format!(
                    "float {v} is not valid JSON"
                ))));
            }
            return s.serialize_f64(v);
        }
        if let Ok(dict) = obj.cast::<PyDict>() {
            self.nest()?;
            let mut map = s.serialize_map(Some(dict.len()))?;
            for (key, value) in dict.iter() {
                let key = key.cast::<PyString>().map_err(|_| {
                    self.fail::<S::Error>(PyTypeError::new_err(format!(
                        "dict keys must be str for JSON, not {}",
                        type_name(&key)
                    )))
                })?;
                let key = key.to_cow().map_err(|e| self.fail::<S::Error>(e))?;
                map.serialize_entry(&*key, &self.child(&value))?;
            }
            return map.end();
        }
        if let Ok(list) = obj.cast::<PyList>() {
            self.nest()?;
            let mut seq = s.serialize_seq(Some(list.len()))?;
            for item in list.iter() {
                seq.serialize_element(&self.child(&item))?;
            }
            return seq.end();
        }
        if let Ok(tuple) = obj.cast::<PyTuple>() {
            self.nest()?;
            let mut seq = s.serialize_seq(Some(tuple.len()))?;
            for item in tuple.iter() {
                seq.serialize_element(&self.child(&item))?;
            }
            return seq.end();
        }
        if let Ok(json) = obj.cast::<Json>() {
            return json.get().raw.serialize(s);
        }
        Err(self.fail(PyTypeError::new_err(format!(
            "{} is not JSON: data may hold dict, list, tuple, str, int, float, bool and None",
            type_name(obj)
        ))))
    }
}

/// Converts a JSON value to the Python value `json.loads` would give.
pub fn to_python<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_python(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, to_python(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// Decodes application data the hub gave back (history, presence info) with Python's own
/// `json.loads`, so that it comes back exactly as a subscriber decoding the frame would
/// see it: integers of any size, floats read exactly.
pub fn decode<'py>(py: Python<'py>, raw: &RawJson) -> PyResult<Bound<'py, PyAny>> {
    static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    LOADS.import(py, "json", "loads")?.call1((raw.get(),))
}

/// Data already encoded as JSON text.
///
/// ``Json(data)`` encodes ``data`` at once (raising ``TypeError`` or ``ValueError`` there
/// and then), and ``Json.from_text(text)`` takes JSON text that is already written. A
/// ``Json`` may stand anywhere in the ``data`` given to a publisher and is sent as is: use
/// it to snapshot data that may change before it is sent, or to pass on JSON you already
/// have without decoding it.
#[pyclass(frozen, module = "hubbub")]
pub struct Json {
    raw: RawJson,
}

#[pymethods]
impl Json {
    #[new]
    fn new(data: &Bound<'_, PyAny>) -> PyResult<Json> {
        Ok(Json { raw: encode(data)? })
    }

    /// Wraps JSON text after checking that it is one valid JSON value.
    #[staticmethod]
    fn from_text(text: String) -> PyResult<Json> {
        let raw = RawJson::from_string(text)
            .map_err(|e| PyValueError::new_err(format!("not valid JSON: {e}")))?;
        Ok(Json { raw })
    }

    /// The JSON text.
    #[getter]
    fn text(&self) -> &str {
        self.raw.get()
    }

    /// Decodes the JSON text to Python values.
    fn decode<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let value: serde_json::Value = self
            .raw
            .decode()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        to_python(py, &value)
    }

    fn __str__(&self) -> &str {
        self.raw.get()
    }

    fn __repr__(&self) -> String {
        let text = serde_json::to_string(self.raw.get()).unwrap_or_default();
        format!("Json.from_text({text})")
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Json>()
            .is_ok_and(|o| o.get().raw.get() == self.raw.get())
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.raw.get().hash(&mut h);
        h.finish()
    }
}
