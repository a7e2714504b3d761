# Patches whisper.cpp's beam search before it is compiled (included by cmake after every project() call, through
# CMAKE_PROJECT_INCLUDE in .cargo/config.toml; whisper-rs-sys copies the sources into its OUT_DIR, and that copy is
# what is patched, never the registry's).
#
# whisper.cpp 1.8.3 (whisper-rs-sys 0.15.0) sorts the k most likely tokens for each beam and then ignores them: it
# draws the k candidates at random from the token distribution, with replacement, even at temperature 0. The beams
# then often hold copies of one hypothesis, and which words win flips with tiny changes of the input. With this patch
# a beam at temperature 0 extends by its k most likely tokens, as OpenAI's and CTranslate2's beam searches do; the
# temperature fallback still samples. See docs/DECISIONS.md ("whisper.cpp beam search").
#
# Each replaced text must be found exactly once; if whisper-rs-sys changes the code, the build stops here instead
# of silently building an unpatched decoder. The marker carries a version: when this file changes, bump it (below;
# it is written into the patched code); scripts/setup.sh reads it from here and rebuilds a whisper-rs-sys build
# folder without it.

set(_autosub_src "${CMAKE_SOURCE_DIR}/src/whisper.cpp")
set(_autosub_marker "autosub-patch v2: beam-topk")

if(EXISTS "${_autosub_src}")
  file(READ "${_autosub_src}" _autosub_text)
  string(FIND "${_autosub_text}" "${_autosub_marker}" _autosub_done)
  if(_autosub_done EQUAL -1)
    set(_autosub_old_1 [=[static std::vector<whisper_token_data> whisper_sample_token_topk(
            whisper_context & ctx,
            whisper_decoder & decoder,
                        int   k) {]=])
    set(_autosub_new_1 [=[static std::vector<whisper_token_data> whisper_sample_token_topk(
            whisper_context & ctx,
            whisper_decoder & decoder,
                        int   k,
                       bool   best) { // @MARKER@]=])
    string(REPLACE "@MARKER@" "${_autosub_marker}" _autosub_new_1 "${_autosub_new_1}")
    set(_autosub_old_2 [=[    std::discrete_distribution<> dist(probs.begin(), probs.end());

    for (int i = 0; i < k; ++i) {
        const auto id = dist(decoder.rng);]=])
    set(_autosub_new_2 [=[    // autosub-patch: the distribution (a pass over the whole vocabulary) is only built when it is sampled
    std::discrete_distribution<> dist;
    if (!best) {
        dist = std::discrete_distribution<>(probs.begin(), probs.end());
    }

    for (int i = 0; i < k; ++i) {
        // autosub-patch: at temperature 0, the k most likely tokens (logits_id is sorted above); never a token
        // that the logit filters ruled out, but always one candidate (the caller needs at least one)
        if (best && i > 0 && logits_id[i].first == -INFINITY) {
            break;
        }
        const auto id = best ? logits_id[i].second : dist(decoder.rng);]=])
    set(_autosub_old_3 [=[whisper_sample_token_topk(*ctx, decoder, params.beam_search.beam_size);]=])
    set(_autosub_new_3 [=[whisper_sample_token_topk(*ctx, decoder, params.beam_search.beam_size, t_cur < 1e-6f);]=])

    foreach(_autosub_i 1 2 3)
      string(FIND "${_autosub_text}" "${_autosub_old_${_autosub_i}}" _autosub_at)
      if(_autosub_at EQUAL -1)
        message(FATAL_ERROR "autosub: whisper.cpp beam-search patch ${_autosub_i} does not apply to ${_autosub_src}: "
                            "the whisper-rs-sys version changed; update scripts/whisper-cpp/beam-topk.cmake")
      endif()
      string(LENGTH "${_autosub_old_${_autosub_i}}" _autosub_len)
      math(EXPR _autosub_after "${_autosub_at} + ${_autosub_len}")
      string(SUBSTRING "${_autosub_text}" ${_autosub_after} -1 _autosub_rest)
      string(FIND "${_autosub_rest}" "${_autosub_old_${_autosub_i}}" _autosub_again)
      if(NOT _autosub_again EQUAL -1)
        message(FATAL_ERROR "autosub: whisper.cpp beam-search patch ${_autosub_i} matches twice in ${_autosub_src}")
      endif()
      string(REPLACE "${_autosub_old_${_autosub_i}}" "${_autosub_new_${_autosub_i}}" _autosub_text "${_autosub_text}")
    endforeach()

    file(WRITE "${_autosub_src}" "${_autosub_text}")
    message(STATUS "autosub: patched whisper.cpp beam search (top-k at temperature 0)")
  endif()
endif()
