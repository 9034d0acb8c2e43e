# 34 copies of a 16-byte comm take more than the 512 bytes of stack a program has.
bpf_tracepoint "syscalls:sys_enter_openat" {|e|
    let c0 = $e.comm
    let c1 = $e.comm
    let c2 = $e.comm
    let c3 = $e.comm
    let c4 = $e.comm
    let c5 = $e.comm
    let c6 = $e.comm
    let c7 = $e.comm
    let c8 = $e.comm
    let c9 = $e.comm
    let c10 = $e.comm
    let c11 = $e.comm
    let c12 = $e.comm
    let c13 = $e.comm
    let c14 = $e.comm
    let c15 = $e.comm
    let c16 = $e.comm
    let c17 = $e.comm
    let c18 = $e.comm
    let c19 = $e.comm
    let c20 = $e.comm
    let c21 = $e.comm
    let c22 = $e.comm
    let c23 = $e.comm
    let c24 = $e.comm
    let c25 = $e.comm
    let c26 = $e.comm
    let c27 = $e.comm
    let c28 = $e.comm
    let c29 = $e.comm
    let c30 = $e.comm
    let c31 = $e.comm
    let c32 = $e.comm
    let c33 = $e.comm
    emit {a: $c0, b: $c33}
}
