/* anneal_bpf.h: what an Anneal eBPF extension in C needs, with no libbpf headers.
 *
 * Sections name the hook a program attaches to (SEC("sched/slice")). Maps may use the
 * legacy "maps" section layout (struct bpf_map_def, ANNEAL_MAP below) or libbpf's BTF style
 * (struct { __uint(type, ...); __type(key, ...); ... } name SEC(".maps"); compile with -g).
 * Helper ids are Linux's; the prototypes match extensions/ebpf/src/helpers.rs.
 */
#ifndef ANNEAL_BPF_H
#define ANNEAL_BPF_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed int __s32;
typedef signed long long __s64;

#define SEC(name) __attribute__((section(name), used))
#define __noinline __attribute__((noinline))

/* Map kinds (Linux enum bpf_map_type). */
#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_RINGBUF 27

/* Update flags. */
#define BPF_ANY 0
#define BPF_NOEXIST 1
#define BPF_EXIST 2

struct bpf_map_def {
    __u32 type;
    __u32 key_size;
    __u32 value_size;
    __u32 max_entries;
    __u32 map_flags;
};

#define ANNEAL_MAP(name_, type_, key_, value_, entries_)                                    \
    struct bpf_map_def SEC("maps") name_ = {                                                \
        .type = type_, .key_size = key_, .value_size = value_, .max_entries = entries_,     \
    }

/* libbpf's BTF-style map members. */
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value,
                                   __u64 flags) = (void *)2;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static long (*bpf_trace_printk)(const char *fmt, __u32 fmt_size, ...) = (void *)6;
static __u32 (*bpf_get_prandom_u32)(void) = (void *)7;
static __u32 (*bpf_get_smp_processor_id)(void) = (void *)8;
static long (*bpf_ringbuf_output)(void *ringbuf, void *data, __u64 size, __u64 flags) =
    (void *)130;

#endif
