import random
random.seed(1)
syl = [c+v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["th","sh","ch","qu","ng"]
words = set()
while len(words) < 60000:
    words.add("".join(random.choice(syl) for _ in range(random.randint(1,4))))
words = sorted(words)
# zipf-ish frequency
weights = [1.0/(i+1)**0.8 for i in range(len(words))]
import itertools; cum = list(itertools.accumulate(weights))
with open("corpus.txt","w") as f:
    for _ in range(200000):
        n = random.randint(4,16)
        s = " ".join(random.choices(words, cum_weights=cum, k=n))
        f.write(s.capitalize()+".\n")
