bpf_profile --hz 49 {|ctx| count --by {comm: $ctx.comm, cpu: $ctx.cpu} }
