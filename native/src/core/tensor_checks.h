// The checks every validator shares, in one place: a tensor descriptor (pointer, rank, dtype,
// device, shape, strides, byte extent), index tensors, and the overlap of the buffers a call
// reads and writes. Each family's validator (validate_*.cpp) builds on these.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>

#include "problem.h"

namespace sa {
namespace check {

long long ll(int64_t x);
const char* dtype_name(int32_t dtype);
int64_t dtype_size(int32_t dtype);
std::string device_text(int32_t device_type, int32_t device_id);
std::string shape_text(const sa_tensor* t);
std::string dims_text(std::initializer_list<int64_t> dims);

// A checked tensor: its descriptor and the byte range it may touch.
struct View {
    const sa_tensor* t = nullptr;
    const char* name = "";
    uintptr_t begin = 0;
    uintptr_t end = 0;
};

bool present(const sa_tensor* t);

// Structural checks shared by every tensor. broadcast_outer allows stride 0 on dims 0 and 1
// (index tensors broadcast over B and H).
View check_tensor(const sa_tensor* t, const char* name, int32_t rank, const char* layout,
                  bool broadcast_outer = false);

void require_dtype(const View& v, int32_t dtype);
void require_same_dtype(const View& v, const View& ref);
// Floating-point tensors the backend of the tensor's device can read and write.
void require_float_dtype(const View& v);
// The reference tensor's device must exist in this build.
void require_device_available(const View& v);
void require_same_device(const View& v, const View& ref);

bool overlaps(const View& a, const View& b);
void require_disjoint(const View& out, const View& other);

// The buffers one attention call reads and writes. Backends read every input (index tensors
// included) while they write rows of the outputs, so each written buffer must be disjoint from
// every other buffer of the call.
struct CallBuffers {
    View reads[10];
    int32_t num_reads = 0;
    View writes[3];
    int32_t num_writes = 0;
    void read(const View& v) { reads[num_reads++] = v; }
    void write(const View& v) { writes[num_writes++] = v; }
};

// Every written buffer against every read one and every other written one.
void require_disjoint_buffers(const CallBuffers& b);

// Exactly the same memory, layout and dtype (allowed in-place aliasing).
bool same_view(const View& a, const View& b);
// An output's strides must map distinct indices to distinct elements.
void require_no_self_alias(const View& v);
void require_contiguous(const View& v);
void require_shape(const View& v, std::initializer_list<int64_t> dims, const char* layout);

RowStrides row_strides(const sa_tensor* t);

struct IndexView {
    View view;
    IndexStrides strides;  // broadcast dims have stride 0
};

// An int32 index tensor of shape [B, H, rows(, cols)], broadcast over B or H through a
// stride of 0 or an extent of 1.
IndexView check_index_tensor(const sa_tensor* t, const char* name, int32_t rank,
                             const char* layout, const View& device_ref, int64_t batch,
                             int64_t heads, int64_t rows, int64_t cols);
const int32_t* index_row(const IndexView& iv, int64_t b, int64_t h, int64_t r);

void require_block_size(int32_t block, const char* name);

}  // namespace check
}  // namespace sa
