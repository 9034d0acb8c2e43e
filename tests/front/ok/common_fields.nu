bpf_tracepoint "syscalls:sys_enter_openat" {|e| emit {pid: $e.pid, tid: $e.tid, uid: $e.uid, gid: $e.gid, comm: $e.comm, ts: $e.ts, cpu: $e.cpu, probe: $e.probe} }
