bpf_tracepoint "syscalls:sys_enter_openat" {|e| emit {pid: $e.pid, comm: $e.comm, file: $e.filename, flags: $e.flags} }
