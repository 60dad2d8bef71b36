//! Rotation functions. A rotation is four steps (createSecret, setSecret, testSecret,
//! finishSecret), each an invocation of the secret's rotation function with the event AWS
//! sends a rotation Lambda. This crate owns that event, the `Invoker` trait the scheduler
//! calls, and the invokers: an HTTP endpoint, a local command, and built-in rotators.
//! Built-in rotators talk to Secrets Manager through `SecretsApi`, exactly as a Lambda
//! talks to it through boto3, so they follow AWS's published rotation templates.

pub mod api;
pub mod builtin;
pub mod command;
pub mod event;
pub mod functions;
pub mod http;

pub use api::{CoreSecretsApi, SecretsApi};
pub use builtin::{
    parse_kind, BuiltinKind, BuiltinOptions, BuiltinRotator, BuiltinSettings, BuiltinSpec,
};
pub use command::LocalEndpoint;
pub use event::{InvokeError, Invoker, RotationEvent, Step};
pub use functions::{FunctionSpec, InvokerSource, Registry};
