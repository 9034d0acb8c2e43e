bpf_tracepoint "syscalls:sys_exit_read" {|e|
    min $e.ret
    max $e.ret
    avg $e.ret --by $e.comm
}
