// POST /v1/completions (completions.h).
#include "agent/server/src/completions.h"

#include "agent/core/util.h"
#include "agent/server/src/authz.h"
#include "agent/server/src/choices.h"
#include "agent/server/src/cors.h"
#include "agent/server/src/logprobs_json.h"
#include "agent/server/src/openai.h"

namespace mnemos::agent::server_detail {

namespace {

// Most alternatives of the legacy "logprobs" parameter (OpenAI's limit).
constexpr int32_t k_max_legacy_logprobs = 5;

struct completion_request {
    std::string prompt_text;  // as echoed
    std::vector<engine::token_id> prompt;
    bool has_bos = false;  // prompt[0] is a BOS that prompt_text does not hold
    gen_params gen;
    bool echo = false;
    int32_t logprobs = -1;  // -1: none; else the alternatives per token
};

// "prompt": a string, an array of one string, an array of token ids, or an array of one such array.
status parse_prompt(const json& b, const engine::tokenizer& tk, int32_t n_vocab, completion_request& out) {
    auto it = b.find("prompt");
    if (it == b.end() || it->is_null()) return make_error(errc::invalid_argument, "'prompt' is required");
    json p = *it;
    if (p.is_array() && p.size() == 1 && (p[0].is_string() || p[0].is_array())) p = json(p[0]);
    if (p.is_string()) {
        out.prompt_text = p.get<std::string>();
        if (!valid_utf8(out.prompt_text)) return make_error(errc::invalid_argument, "'prompt' is not valid UTF-8");
        out.prompt = tk.encode(out.prompt_text, tk.add_bos_default(), /*parse_special=*/false);
        out.has_bos = !out.prompt.empty() && out.prompt.front() == tk.bos() && tk.add_bos_default();
    } else if (p.is_array() && !p.empty() && p[0].is_number_integer()) {
        for (const auto& t : p) {
            if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= n_vocab)
                return make_error(errc::invalid_argument,
                                  "'prompt' token ids must be integers in [0, " + std::to_string(n_vocab) + ")");
            out.prompt.push_back(static_cast<engine::token_id>(t.get<int64_t>()));
        }
        out.prompt_text = tk.decode(out.prompt, /*render_special=*/true);
    } else {
        return make_error(errc::invalid_argument,
                          "'prompt' must be a string, an array of one string, or an array of token ids "
                          "(one prompt per request)");
    }
    if (out.prompt.empty()) return make_error(errc::invalid_argument, "'prompt' is empty");
    return {};
}

// The fields of the legacy endpoint besides the common generation parameters.
status parse_completion_fields(const json& b, completion_request& out) {
    if (auto it = b.find("suffix"); it != b.end() && !it->is_null())
        return make_error(errc::invalid_argument, "'suffix' is not supported");
    if (auto it = b.find("best_of");
        it != b.end() && !it->is_null() && (!it->is_number_integer() || it->get<int64_t>() != out.gen.n))
        return make_error(errc::invalid_argument, "'best_of' is not supported (use 'n')");
    if (auto it = b.find("echo"); it != b.end() && !it->is_null()) {
        if (!it->is_boolean()) return make_error(errc::invalid_argument, "'echo' must be a boolean");
        out.echo = it->get<bool>();
    }
    if (auto it = b.find("logprobs"); it != b.end() && !it->is_null()) {
        if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > k_max_legacy_logprobs)
            return make_error(errc::invalid_argument,
                              "'logprobs' must be an integer in [0, " + std::to_string(k_max_legacy_logprobs) + "]");
        out.logprobs = static_cast<int32_t>(it->get<int64_t>());
    }
    return {};
}

std::variant<completion_request, reply> parse_completion(const request_ctx& cx) {
    auto parsed = parse_body(cx.req);
    if (auto* e = std::get_if<reply>(&parsed)) return std::move(*e);
    const json& b = std::get<json>(parsed);
    const auto& mdl = cx.st->runner->mdl();
    completion_request c;
    status s = parse_gen_params(b, c.gen);
    if (s.ok()) s = parse_completion_fields(b, c);
    if (s.ok()) s = parse_prompt(b, mdl.tok(), mdl.hp().n_vocab, c);
    if (!s.ok()) return status_reply(s);
    return c;
}

// The prompt tokens' log-probabilities, filled on the engine thread from on_logits (position p predicts p + 1).
using prompt_logprobs = std::vector<engine::sampled_logprobs>;

result<engine::request> make_completion_request(const server_state& st, const completion_request& c,
                                                const std::shared_ptr<prompt_logprobs>& plp) {
    const int32_t limit = st.runner->history_limit();
    const int32_t n_prompt = static_cast<int32_t>(c.prompt.size());
    if (n_prompt + 1 >= limit)
        return make_error(errc::context_exceeded, "prompt has " + std::to_string(n_prompt) +
                                                      " tokens; the context holds " + std::to_string(limit));
    const int32_t want = c.gen.max_tokens > 0 ? c.gen.max_tokens : st.opt.default_max_tokens;
    engine::request r;
    r.prompt = c.prompt;
    r.max_tokens = std::min(want, limit - n_prompt);
    r.sampling = c.gen.sampling;
    r.stop = c.gen.stop;
    r.logprobs = c.logprobs >= 0;
    r.top_logprobs = std::max(c.logprobs, 0);
    if (plp) {
        // Every prompt position's logits (none reused); run_choices gives them to choice 0 only.
        plp->resize(c.prompt.size());
        r.reuse_prefix = false;
        r.on_logits = [plp, prompt = c.prompt, top = r.top_logprobs](int64_t pos, std::span<const float> lg) {
            if (pos + 1 < static_cast<int64_t>(prompt.size()))
                (*plp)[size_t(pos + 1)] = engine::logprobs_of(lg, prompt[size_t(pos + 1)], top);
        };
    }
    return r;
}

// The legacy logprobs of the echoed prompt (a BOS not listed; the first listed token has none); without echo none,
// with the offset at the end of the prompt text.
legacy_logprobs echoed_logprobs(const completion_request& c, const engine::tokenizer& tk, const prompt_logprobs* plp) {
    legacy_logprobs l;
    if (!c.echo) {
        l.offset = c.prompt_text.size();
        return l;
    }
    const size_t first = c.has_bos ? 1 : 0;
    for (size_t k = first; k < c.prompt.size(); ++k)
        legacy_append(l, tk, c.prompt[k], k == first || !plp ? nullptr : &(*plp)[k]);
    return l;
}

// The legacy logprobs of a choice: the echoed prompt's, then the generated tokens'.
json choice_logprobs(const completion_request& c, const engine::tokenizer& tk, const prompt_logprobs* plp,
                     const turn_outcome& out) {
    legacy_logprobs l = echoed_logprobs(c, tk, plp);
    legacy_append_generated(l, tk, out.info.logprobs);
    return legacy_json(l);
}

struct text_ids {
    std::string id;
    int64_t created;
    std::string model;
};

json completion_json(const text_ids& ids, json choices) {
    return {{"id", ids.id},
            {"object", "text_completion"},
            {"created", ids.created},
            {"model", ids.model},
            {"choices", std::move(choices)}};
}

json choice_json(int32_t i, std::string text, json logprobs, const char* finish) {
    return {{"index", i},
            {"text", std::move(text)},
            {"logprobs", std::move(logprobs)},
            {"finish_reason", finish ? json(finish) : json()}};
}

awaitable<bool> completion_reply(request_ctx& cx, const completion_request& c, engine::request r,
                                 std::shared_ptr<prompt_logprobs> plp, const text_ids& ids) {
    auto outs = co_await run_choices(cx.st, std::move(r), c.gen.n, choice_delta_fn{}, {}, &cx.rec);
    for (const auto& o : outs)
        if (o.info.reason == engine::finish_reason::error) co_return co_await respond(cx, status_reply(o.info.error));
    const auto& tk = cx.st->runner->mdl().tok();
    json choices = json::array();
    for (size_t i = 0; i < outs.size(); ++i) {
        json lp = c.logprobs >= 0 ? choice_logprobs(c, tk, plp.get(), outs[i]) : json();
        choices.push_back(choice_json(int32_t(i), (c.echo ? c.prompt_text : std::string()) + outs[i].text,
                                      std::move(lp), openai_finish(outs[i].info.reason)));
    }
    json j = completion_json(ids, std::move(choices));
    j["usage"] = choices_usage(outs);
    add_choices_meta(j, outs);
    co_return co_await respond(cx, json_reply(j));
}

// A streamed completion: what its deltas need.
struct completion_stream {
    sse_writer w;
    unsigned version = 11;
    text_ids ids;
    const completion_request* c = nullptr;
    const engine::tokenizer* tk = nullptr;
    std::shared_ptr<prompt_logprobs> plp;  // with echo and logprobs: filled by choice 0's prefill
    bool echo_pending = false;
    std::vector<size_t> offsets;  // per choice: the text_offset of its next token
    std::vector<size_t> n_sent;   // per choice: logprobs sent
};

json delta_chunk(completion_stream* s, int32_t i, std::string text, std::span<const engine::sampled_logprobs> lps,
                 const char* finish) {
    json lp;
    if (s->c->logprobs >= 0) {
        legacy_logprobs l;
        l.offset = s->offsets[size_t(i)];
        legacy_append_generated(l, *s->tk, lps);
        s->offsets[size_t(i)] = l.offset;
        s->n_sent[size_t(i)] += lps.size();
        lp = legacy_json(l);
    }
    return completion_json(s->ids, json::array({choice_json(i, std::move(text), std::move(lp), finish)}));
}

// With echo: the prompt as each choice's first chunk, once its logprobs exist (the first delta, or the end).
awaitable<bool> send_echo(completion_stream* s) {
    if (!s->echo_pending) co_return s->w.ok;
    s->echo_pending = false;
    const legacy_logprobs l = echoed_logprobs(*s->c, *s->tk, s->plp.get());
    for (size_t i = 0; i < s->offsets.size(); ++i) {
        json lp = s->c->logprobs >= 0 ? legacy_json(l) : json();
        std::string chunk =
            dump(completion_json(s->ids, json::array({choice_json(int32_t(i), s->c->prompt_text, lp, nullptr)})));
        co_await sse_send(&s->w, s->version, std::move(chunk));
    }
    co_return s->w.ok;
}

awaitable<bool> send_delta(completion_stream* s, int32_t i, std::string text,
                           std::vector<engine::sampled_logprobs> lps) {
    co_await send_echo(s);
    std::string chunk = dump(delta_chunk(s, i, std::move(text), lps, nullptr));
    co_return co_await sse_send(&s->w, s->version, std::move(chunk));
}

awaitable<bool> completion_sse(request_ctx& cx, const completion_request& c, engine::request r,
                               std::shared_ptr<prompt_logprobs> plp, const text_ids& ids) {
    auto& st = cx.st;
    const int32_t n = c.gen.n;
    completion_stream s{sse_writer{&cx.stream, cors_allow_origin(st->opt, cx.req)},
                        cx.req.version(),
                        ids,
                        &c,
                        &st->runner->mdl().tok(),
                        std::move(plp),
                        c.echo,
                        {},
                        {}};
    s.offsets.assign(size_t(n), echoed_logprobs(c, *s.tk, nullptr).offset);
    s.n_sent.assign(size_t(n), 0);
    completion_stream* sp = &s;
    choice_delta_fn on_delta = [sp](int32_t i, std::string text, std::vector<engine::sampled_logprobs> lps) {
        return send_delta(sp, i, std::move(text), std::move(lps));
    };
    auto outs = co_await run_choices(st, std::move(r), n, on_delta, {}, &cx.rec);
    const turn_outcome* failed = nullptr;
    for (const auto& o : outs)
        if (!failed && o.info.reason == engine::finish_reason::error) failed = &o;
    if (failed) {
        const errc_http& row = errc_http_of(failed->info.error.code());
        std::string err = dump(json{{"error", {{"message", failed->info.error.message()}, {"type", row.type}}}});
        co_await sse_send(&s.w, s.version, std::move(err));
    } else {
        co_await send_echo(&s);
        for (int32_t i = 0; i < n; ++i) {
            const auto& all = outs[size_t(i)].info.logprobs;
            const auto rest = std::span(all).subspan(std::min(s.n_sent[size_t(i)], all.size()));
            json last = delta_chunk(&s, i, "", rest, openai_finish(outs[size_t(i)].info.reason));
            if (i + 1 == n) {  // the last one carries the usage
                last["usage"] = choices_usage(outs);
                add_choices_meta(last, outs);
            }
            std::string text = dump(last);
            co_await sse_send(&s.w, s.version, std::move(text));
        }
    }
    std::string done_marker = "[DONE]";
    co_await sse_send(&s.w, s.version, std::move(done_marker));
    const bool ok = co_await sse_end(&s.w);
    co_return ok&& cx.req.keep_alive() && !st->stopping;
}

}  // namespace

awaitable<bool> handle_completions(request_ctx& cx) {
    auto parsed = parse_completion(cx);
    if (auto* e = std::get_if<reply>(&parsed)) co_return co_await respond(cx, std::move(*e));
    const completion_request c = std::move(std::get<completion_request>(parsed));
    std::shared_ptr<prompt_logprobs> plp;
    if (c.echo && c.logprobs >= 0) plp = std::make_shared<prompt_logprobs>();
    auto made = make_completion_request(*cx.st, c, plp);
    if (!made) co_return co_await respond(cx, status_reply(made.error()));
    {  // the caller's cache scope (authz.h): a raw prompt may spell any chat markup
        turn_plan scoped;
        scoped.prompt = made->prompt;
        scope_stateless(*cx.st, cx.who, scoped);
        made->scope = scoped.scope;
    }
    const text_ids ids{"cmpl-" + random_hex(24), unix_now(), cx.st->model_id};
    if (c.gen.stream) co_return co_await completion_sse(cx, c, std::move(made.value()), std::move(plp), ids);
    co_return co_await completion_reply(cx, c, std::move(made.value()), std::move(plp), ids);
}

}  // namespace mnemos::agent::server_detail
