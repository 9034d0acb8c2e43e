bpf_tracepoint "syscalls:sys_enter_kill" {|e| emit {target: $e.args.pid, sig: $e.sig, me: $e.pid} }
