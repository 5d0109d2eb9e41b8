// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* vmtest tool, not part of the product: prints every loaded BPF program as
 * "name<TAB>type<TAB>verified_insns<TAB>xlated_bytes", one per line.
 * bpftool (7.5) does not print bpf_prog_info.verified_insns, the verifier's
 * count of processed instructions, which is what the matrix tracks to make
 * growth in program complexity visible per kernel. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static int print_prog(__u32 id)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	const char *type;
	int fd, err;

	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;	/* unloaded meanwhile */
	memset(&info, 0, sizeof(info));
	err = bpf_prog_get_info_by_fd(fd, &info, &len);
	close(fd);
	if (err)
		return err;
	type = libbpf_bpf_prog_type_str(info.type);
	printf("%s\t%s\t%u\t%u\n", info.name, type ? type : "unknown",
	       info.verified_insns, info.xlated_prog_len);
	return 0;
}

int main(void)
{
	__u32 id = 0;
	int err;

	while (bpf_prog_get_next_id(id, &id) == 0) {
		err = print_prog(id);
		if (err) {
			fprintf(stderr, "progstat: program %u: %s\n", id, strerror(-err));
			return 1;
		}
	}
	if (errno != ENOENT) {
		fprintf(stderr, "progstat: listing programs: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
