#pragma once
// Quest's upper bound of q . k over a page from the per-channel minimum and maximum of its keys:
//   bound(q) = sum_i max(q_i * min_i, q_i * max_i)
// Each term is q_i * max_i when q_i >= 0 and q_i * min_i otherwise (the products are the same floats), so with
// the query split once per step into [min(q, 0) | max(q, 0)] the bound of a summary [min | max] is one dot
// product of 2 * head_dim floats: summary_bound() (16 lanes: AVX2 and FMA when the CPU has them, else vectorized
// by the compiler; another summation order than the reference, so equal up to float rounding:
// |diff| <= 1e-5 * sum_i |q_i| max(|min_i|, |max_i|)).
#include <cstdint>

namespace mnemos::engine {

// The reference: the best over g query heads of sum_i max(q_i * mn_i, q_i * mx_i), in channel order.
// summary [2][head_dim]: min then max. q [g][head_dim].
float summary_bound_reference(const float* summary, const float* q, int g, int head_dim);

// split [g][2][head_dim]: per query head, min(q, 0) then max(q, 0). q [g][head_dim].
void split_query(const float* q, int g, int head_dim, float* split);

// The same bound from a split query (split_query): the best over g heads of dot(split[j], summary).
float summary_bound(const float* summary, const float* split, int g, int head_dim);

}  // namespace mnemos::engine
