//! One call's life, from the future a wrapped function returns to the result it resolves to:
//! the task cell the call and its runner share ([`task`]), the future ([`future`]), the
//! adaptive wait for short calls ([`adaptive`]), the nest-safe [`block_on`](block_on::block_on),
//! and the futures nobody awaits ([`detached`]).

pub(crate) mod adaptive;
pub(crate) mod block_on;
pub(crate) mod detached;
pub(crate) mod future;
pub(crate) mod task;
