# ruff: noqa: E501, T201
# (replies keep their paragraphs on one line, as models write them; main() reports by print)
"""Write ``answer_corpus.jsonl``: model replies in the styles of six model families, each
with the dataset's gold answer and the outcome a careful human grader would give it.

Run ``python tests/data/make_answer_corpus.py`` to regenerate the JSONL beside this file
(deterministic: the cases are written out by hand below, in order; ids are numbered per
family in that order). ``expected`` is the human verdict -- ``correct``, ``wrong`` or
``no_answer`` -- never what any extractor happens to do.

Fields of a case: ``id``, ``family`` (``gpt4``, ``llama``, ``qwen_math``, ``deepseek_r1``,
``terse``, ``mmlu``), ``question``, ``gold`` (as a dataset holds it), ``kind`` (``numeric``,
``math``, ``choice``, ``text``), ``choices`` (choice items only), ``reply`` (the message
content), ``reasoning_content`` (optional: thinking returned in a separate field, as vLLM's
reasoning parser and the DeepSeek API do), ``finish_reason`` (optional, ``length`` for a
reply cut off by the token limit), ``expected`` and ``note``. A ``wrong`` case whose note
says "gold stated earlier" holds the gold text in its reply before a different final
answer; "gold reached in reasoning_content" says the same of the separate thinking field.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("answer_corpus.jsonl")
CASES: list[dict[str, Any]] = []


def T(text: str) -> str:
    """A reply written indented in this file: dedented, outer blank lines dropped."""
    return textwrap.dedent(text).strip("\n")


def C(family: str, question: str, gold: str, kind: str, reply: str, expected: str,
      note: str, *, choices: list[str] | None = None, reasoning: str | None = None,
      finish_reason: str | None = None) -> None:
    case: dict[str, Any] = {"id": "", "family": family, "question": question, "gold": gold,
                            "kind": kind}
    if choices is not None:
        case["choices"] = choices
    case["reply"] = reply
    if reasoning is not None:
        case["reasoning_content"] = reasoning
    if finish_reason is not None:
        case["finish_reason"] = finish_reason
    case["expected"] = expected
    case["note"] = note
    CASES.append(case)


# =============================================================================== gpt4 ===
# GPT-4-class chat: markdown, bold, headings, step lists, closing sentences.
G = "gpt4"

C(G, "A bakery sells muffins for $3 each and cookies for $1.50 each. Maria buys 8 muffins "
     "and 12 cookies. How many dollars does she spend?", "42", "numeric", T("""
    Let's break this down step by step.

    **Muffins:** 8 × $3 = $24
    **Cookies:** 12 × $1.50 = $18

    **Total:** $24 + $18 = $42

    Maria spends **$42**.
    """), "correct", "bold dollar amount in a closing sentence, no Answer: line")

C(G, "A library had 512 books. It lent out 147 and then received 74 donated books. How "
     "many books are in the library now?", "439", "numeric", T("""
    To find the number of books now:

    1. Start with 512 books.
    2. Subtract the 147 lent out: 512 − 147 = 365.
    3. Add the 74 donations: 365 + 74 = 439.

    The answer is **439**.
    """), "correct", "'The answer is **439**.' after a numbered list")

C(G, "A warehouse holds 1,200 boxes. 385 are shipped out on Monday and 210 arrive on "
     "Tuesday. How many boxes are in the warehouse after Tuesday?", "1025", "numeric", T("""
    ### Step 1: Boxes after Monday
    1,200 − 385 = 815 boxes remain after the Monday shipment.

    ### Step 2: Boxes after Tuesday
    815 + 210 = 1025 boxes.

    However, the 210 boxes that arrived on Tuesday still have to be checked in before they
    are counted as warehouse stock, so they shouldn't be included yet.

    **Answer: 815**
    """), "wrong", "gold stated earlier (1025), then an invented extra step changes the final")

C(G, "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and "
     "bakes muffins for her friends every day with four. She sells the remainder at the "
     "farmers' market daily for $2 per fresh duck egg. How much in dollars does she make "
     "every day at the farmers' market?", "18", "numeric", T("""
    ## Step-by-step solution

    1. **Eggs laid per day:** 16
    2. **Eggs used:** 3 (breakfast) + 4 (muffins) = 7
    3. **Eggs left to sell:** 16 − 7 = 9
    4. **Revenue:** 9 × $2 = $18

    ### Final Answer
    Janet makes **$18** every day at the farmers' market.
    """), "correct", "'### Final Answer' heading followed by a bold sentence")

C(G, "Three friends split a $127.50 bill equally. How much does each pay, in dollars?",
  "42.5", "numeric", T("""
    Divide the bill by the number of friends:

    $$127.50 \\div 3 = 42.50$$

    Each friend pays **$42.50**.
    """), "correct", "currency with trailing zero: $42.50 vs gold 42.5")

C(G, "A stadium sold 617 tickets on Friday and twice as many on Saturday. How many tickets "
     "were sold on Saturday?", "1234", "numeric", T("""
    Saturday's sales are twice Friday's:

    617 × 2 = 1,234

    **Answer:** 1,234 tickets
    """), "correct", "thousands separator and a unit word after the number")

C(G, "A rectangle is 4 cm wide and 3 cm tall. What is its area in square centimetres?",
  "12", "numeric", T("""
    The area of a rectangle is width × height:

    Area = 4 cm × 3 cm = 12 cm²

    **The area is 12 cm².**
    """), "correct", "units with a superscript: 12 cm²")

C(G, "A jacket originally priced at $80 is on sale for $60. By what percent was the price "
     "reduced?", "25", "numeric", T("""
    The reduction is $80 − $60 = $20.

    Percent reduction = (20 / 80) × 100% = 25%

    **Answer: 25%**
    """), "correct", "percent sign on the answer, gold a bare 25")

C(G, "What is the value of 3x − 2 when x = −5/3?", "-7", "numeric", T("""
    Substitute x = −5/3:

    3(−5/3) − 2 = −5 − 2 = −7

    So the expression equals **−7**.
    """), "correct", "unicode minus sign in the final value")

C(G, "Which planet is known as the Red Planet?", "B", "choice", T("""
    Mars appears reddish because its surface is covered in iron oxide (rust) dust.

    **Answer: (B) Mars**
    """), "correct", "bold '(B) Mars'", choices=["Venus", "Mars", "Jupiter", "Mercury"])

C(G, "Which gas do plants primarily absorb from the atmosphere for photosynthesis?", "C",
  "choice", T("""
    During photosynthesis, plants take in carbon dioxide through the stomata in their
    leaves and, using light energy, combine it with water to make glucose, releasing
    oxygen as a by-product.

    **Answer:** Carbon dioxide
    """), "correct", "answers with the option text instead of the letter",
  choices=["Oxygen", "Nitrogen", "Carbon dioxide", "Hydrogen"])

C(G, "In a perfectly competitive market in long-run equilibrium, what is a firm's economic "
     "profit?", "A", "choice", T("""
    Option A (zero) is the textbook answer many people jump to, but firms in long-run
    equilibrium still earn their normal return on capital, and that return shows up in
    their books. So the profit a firm actually reports equals its accounting profit.

    **The correct option is D.**
    """), "wrong", "gold stated earlier (option A named first), final choice D",
  choices=["Zero", "Positive", "Negative", "Equal to accounting profit"])

C(G, "What is the capital of Australia?", "Canberra", "text", T("""
    Many people assume it's Sydney or Melbourne, but the capital of Australia is
    **Canberra**. It was purpose-built as a compromise between those two rival cities and
    became the seat of the federal parliament in 1927.
    """), "correct", "text answer in bold mid-paragraph, other city names around it")

C(G, "Who wrote the novel 'Pride and Prejudice'?", "Jane Austen", "text", T("""
    *Pride and Prejudice* was published in 1813 and is one of the best-known novels of the
    Regency era, following Elizabeth Bennet and Mr. Darcy.

    **Answer:** Emily Brontë
    """), "wrong", "wrong author in a bold Answer line")

C(G, "What is the exact value of sin(60°)?", "\\frac{\\sqrt{3}}{2}", "math", T("""
    In a 30-60-90 triangle the sides are in the ratio 1 : √3 : 2, with the side of length √3
    opposite the 60° angle. Therefore

    $$\\sin 60^\\circ = \\frac{\\text{opposite}}{\\text{hypotenuse}} = \\frac{\\sqrt{3}}{2}$$

    **Answer:** $\\dfrac{\\sqrt{3}}{2}$
    """), "correct", "\\dfrac in the answer, \\frac in the gold")

C(G, "What is the exact value of cos(30°)?", "\\frac{\\sqrt{3}}{2}", "math", T("""
    On the unit circle, the point at 30° is $\\left(\\frac{\\sqrt{3}}{2}, \\frac{1}{2}\\right)$,
    so the x-coordinate is $\\frac{\\sqrt{3}}{2}$.

    Hmm, wait — the coordinate that belongs to cosine here is the shorter leg of the
    30-60-90 triangle, so:

    $$\\cos 30^\\circ = \\frac{1}{2}$$

    **Answer:** $\\frac{1}{2}$
    """), "wrong", "gold stated earlier (\\frac{\\sqrt{3}}{2}), model talks itself into 1/2")

C(G, "A concert venue was filled to capacity last Saturday. How many people attended?",
  "2500", "numeric", T("""
    I'm sorry, but I can't determine the attendance from the information given — the
    question doesn't state the venue's capacity. If you can tell me how many seats or
    standing places the venue has, I'd be happy to work it out.
    """), "no_answer", "polite refusal, missing information")

C(G, "A train leaves a station and arrives at a town 240 km away. What was its average "
     "speed in km/h?", "80", "numeric", T("""
    To compute average speed we need both the distance and the travel time:

    - **Distance:** 240 km
    - **Time:** not given

    Without the travel time, the average speed can't be determined.

    Answer: cannot answer
    """), "no_answer", "explicit 'Answer: cannot answer' after a bullet list with a number")

C(G, "A car travels at 60 km/h for 3 hours. How many kilometres does it travel?", "180",
  "numeric", T("""
    The car moves at a constant speed throughout the trip, so we can use the given rate
    directly.

    **Answer:** 60 km/h
    """), "wrong", "restates the question's speed as the final answer")

C(G, "If 5 machines make 5 widgets in 5 minutes, how many minutes would 100 machines take "
     "to make 100 widgets?", "5", "numeric", T("""
    This is a proportional reasoning problem.

    - 5 machines → 5 widgets → 5 minutes
    - Scaling everything up by 20: 100 widgets would take 20 × 5 minutes.

    So 100 machines would need **100 minutes** to make 100 widgets.
    """), "wrong", "classic trap, wrong final in bold, gold 5 appears only as question data")

C(G, "What is 2 raised to the 10th power?", "1024", "numeric", T("""
    We can split the exponent:

    2¹⁰ = 2⁵ × 2⁵ = 32 × 32 = 1,024

    Therefore, the final answer is 1,024.
    """), "correct", "'Therefore, the final answer is 1,024.'")

C(G, "A bag has 3 red marbles and 1 blue marble. What is the probability of drawing a red "
     "marble?", "3/4", "numeric", T("""
    There are 3 + 1 = 4 marbles, 3 of them red:

    P(red) = 3/4 = 0.75

    **Final answer: 0.75**
    """), "correct", "decimal 0.75 against gold fraction 3/4")

C(G, "A fair six-sided die is rolled. What is the probability of rolling a number greater "
     "than 4?", "1/3", "numeric", T("""
    The numbers greater than 4 are 5 and 6, which gives 2 favourable outcomes out of 6,
    i.e. 2/6 = 1/3.

    Hmm, actually, "greater than 4" should include 4 itself when we talk about rolling at
    least a high number, so the outcomes are 4, 5 and 6:

    P = 3/6 = 1/2

    **Answer:** 1/2
    """), "wrong", "gold stated earlier (1/3), then a misreading gives 1/2")

C(G, "A box holds 7 rows of 8 chocolates. How many chocolates are in the box?", "56",
  "numeric", T("""
    Multiply the number of rows by the chocolates per row:

    7 × 8 = 56

    **Answer:** 56 chocolates

    *Check:* 8 + 8 + 8 + 8 + 8 + 8 + 8 = 56 ✓
    """), "correct", "answer followed by a check line with other numbers")

C(G, "What was the population of the town of Millbrook in 1850?", "3120", "numeric", T("""
    I'm not sure. I don't have reliable census records for Millbrook in that year, and
    several towns in different states share that name.
    """), "no_answer", "'I'm not sure.' with a year in the question")

C(G, "Which of the following is a prime number?", "D", "choice", T("""
    Let's check each option:

    - **21** = 3 × 7
    - **27** = 3³
    - **33** = 3 × 11
    - **37** has no divisors other than 1 and itself

    The correct option is D.
    """), "correct", "'The correct option is D.'", choices=["21", "27", "33", "37"])

C(G, "You deposit $1,000 at 10% annual interest compounded yearly. How many dollars do "
     "you have after 2 years?", "1210", "numeric", T("""
    Each year you earn 10% of $1,000, which is $100.

    After 2 years: $1,000 + 2 × $100 = **$1,200**

    So you'll have **$1,200** after two years.
    """), "wrong", "simple instead of compound interest")

C(G, "Solve for x: 2x + 7 = 17.", "5", "numeric", T("""
    1. Subtract 7 from both sides: 2x = 10
    2. Divide both sides by 2: x = 5

    **Solution:** x = 5
    """), "correct", "'x = 5' form")

C(G, "Simplify the square root of 50.", "5\\sqrt{2}", "math", T("""
    Factor out the largest perfect square:

    $$\\sqrt{50} = \\sqrt{25 \\cdot 2} = \\sqrt{25}\\,\\sqrt{2} = 5\\sqrt{2}$$

    **Answer:** $5\\sqrt{2}$
    """), "correct", "LaTeX surd in a bold answer line")

C(G, "Tom is 4 years older than his sister. In 6 years their ages will add up to 40. How "
     "old is Tom now?", "16", "numeric", T("""
    Let the sister's current age be *s*. Then Tom is *s* + 4.

    In 6 years: (s + 6) + (s + 10) = 40 → 2s + 16 = 40 → s = 12

    So Tom is 12 + 4 = 16 now, and in 6 years he will be 22.

    **Answer:** Tom will be 22.
    """), "wrong", "gold stated earlier (16), final answers his age in 6 years")

C(G, "What is $\\frac{2}{3}$ divided by $\\frac{4}{9}$?", "\\frac{3}{2}", "math", T("""
    Dividing by a fraction is the same as multiplying by its reciprocal:

    $$\\frac{2}{3} \\div \\frac{4}{9} = \\frac{2}{3} \\times \\frac{9}{4} = \\frac{18}{12} = \\frac{3}{2}$$

    **Answer:** 3/2 (or 1.5)
    """), "correct", "plain 3/2 with a decimal aside, LaTeX gold")

# ============================================================================== llama ===
# Llama-style: GSM8K fine-tunes (<<calc>> and ####), Minerva prompts ("Final Answer: The
# final answer is $X$. I hope it is correct."), Llama-3.1 "## Step N" with "The final
# answer is: $\boxed{X}$", chatty Llama-2 replies.
L = "llama"

C(L, "Natalia sold clips to 48 of her friends in April, and then she sold half as many "
     "clips in May. How many clips did Natalia sell altogether in April and May?", "72",
  "numeric", T("""
    Natalia sold 48/2 = <<48/2=24>>24 clips in May.
    Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.
    #### 72
    """), "correct", "GSM8K '#### 72' with calculator annotations")

C(L, "What is the sum of all positive divisors of 28?", "56", "numeric", T("""
    The positive divisors of 28 are 1, 2, 4, 7, 14 and 28. Their sum is $1+2+4+7+14+28=56$.
    Final Answer: The final answer is $56$. I hope it is correct.
    """), "correct", "Minerva 'Final Answer: The final answer is $56$. I hope it is correct.'")

C(L, "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of "
     "babysitting. How much did she earn in dollars?", "10", "numeric", T("""
    ## Step 1: Convert the hourly rate to a per-minute rate
    Weng earns $12 per hour, and there are 60 minutes in an hour, so she earns $12 / 60 = $0.20 per minute.

    ## Step 2: Multiply by the minutes worked
    $0.20 × 50 = $10.

    The final answer is: $\\boxed{10}$
    """), "correct", "Llama-3.1 steps, 'The final answer is: $\\boxed{10}$'")

C(L, "Betty is saving money for a new wallet which costs $100. Betty has only half of the "
     "money she needs. Her parents decided to give her $15 for that purpose, and her "
     "grandparents twice as much as her parents. How much more money does Betty need to "
     "buy the wallet?", "5", "numeric", T("""
    Sure, I'd be happy to help you with that! 😊

    Let's see... Betty needs $100 for the wallet and she has half of that, so she has $50.

    Her parents give her $15, and her grandparents give her twice as much, which is $30.

    So in total Betty now has $50 + $15 + $30 = $95.

    That means Betty still needs $100 - $95 = $5 more to buy the wallet.

    I hope this helps! Let me know if you have any other questions.
    """), "correct", "chatty Llama-2 reply, answer in a sentence, pleasantries after it")

C(L, "James writes a 3-page letter to 2 different friends twice a week. How many pages "
     "does he write a year?", "624", "numeric", T("""
    He writes each friend 3*2=<<3*2=6>>6 pages a week
    So he writes 6*2=<<6*2=12>>12 pages every week
    That means he writes 12*52=<<12*52=624>>624 pages a year
    But he skips 2 weeks of holidays, so 624-24=<<624-24=600>>600
    #### 600
    """), "wrong", "gold stated earlier (624), invented holiday step, '#### 600'")

C(L, "If $f(x) = 3x + 2$, what is $f(f(1))$?", "17", "numeric", T("""
    We have $f(1)=3(1)+2=5$. Then $f(f(1))=f(5)=3\\cdot5+2=15$.
    Final Answer: The final answer is $15$. I hope it is correct.
    """), "wrong", "Minerva format, arithmetic slip")

C(L, "A rectangular garden is 15 meters long and 8 meters wide. What is the perimeter of "
     "the garden in meters?", "46", "numeric", T("""
    ## Step 1: Recall the perimeter formula
    The perimeter of a rectangle is P = 2(l + w).

    ## Step 2: Substitute the values
    P = 2(15 + 8) = 2(23) = 46.

    ## Step 3: Double-check with the area
    The area is 15 × 8 = 120 square meters, which is the total size of the garden.

    The final answer is: $\\boxed{120}$
    """), "wrong", "gold stated earlier (46), boxes the area instead")

C(L, "A farmer has 3 pens with 6 sheep in each pen. How many sheep does the farmer have?",
  "18", "numeric", "The farmer has 3 pens and each pen has 6 sheep. 3 x 6 = 18. The answer "
  "is 18.", "correct", "one paragraph ending 'The answer is 18.'")

C(L, "What is the chemical symbol for gold?", "B", "choice", T("""
    The chemical symbol for gold is Au, which comes from the Latin word "aurum". Therefore, the correct answer is B) Au.
    """), "correct", "'the correct answer is B) Au.' inside a sentence",
  choices=["Ag", "Au", "Gd", "Go"])

C(L, "Which organ in the human body produces insulin?", "B", "choice", T("""
    Insulin is a hormone that regulates blood sugar levels. It is produced by the liver, which stores glucose as glycogen and releases it when needed.

    The correct answer is A) Liver.
    """), "wrong", "confident wrong letter", choices=["Liver", "Pancreas", "Kidney", "Stomach"])

C(L, "How many hours will it take the tanker to be unloaded at the new terminal?", "14",
  "numeric", T("""
    I apologize, but I cannot determine this without more information. The question doesn't mention the tanker's capacity or the terminal's unloading rate. Could you please provide those details so I can help you calculate the time?
    """), "no_answer", "Llama-2 apology asking for details")

C(L, "A pizza is cut into 8 slices. Sam eats 3 slices and Lia eats 2. How many slices are "
     "left?", "3", "numeric", "", "no_answer", "empty reply")

C(L, "Simplify $\\frac{6}{8}$ to lowest terms.", "\\frac{3}{4}", "math", T("""
    Dividing numerator and denominator by 2, we get $\\frac{6}{8}=\\frac{3}{4}$.
    Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.
    """), "correct", "Minerva format with a LaTeX fraction")

C(L, "What is the distance between the points (1, 2) and (4, 6)?", "5", "numeric", T("""
    ## Step 1: Use the distance formula
    $d = \\sqrt{(x_2-x_1)^2 + (y_2-y_1)^2}$

    ## Step 2: Plug in the coordinates
    $d = \\sqrt{(4-1)^2 + (6-2)^2} = \\sqrt{9 + 16} = \\sqrt{25}$

    ## Step 3: Simplify
    $d = 5$

    The final answer is: $\\boxed{5}$
    """), "correct", "Llama-3.1 steps with several numbers, boxed 5")

C(L, "Find the exact value of $\\tan(\\pi/3)$.", "\\sqrt{3}", "math", T("""
    ## Step 1: Write tangent as sine over cosine
    $\\tan(\\pi/3) = \\frac{\\sin(\\pi/3)}{\\cos(\\pi/3)} = \\frac{\\sqrt{3}/2}{1/2}$

    ## Step 2: Simplify
    $\\frac{\\sqrt{3}/2}{1/2} = \\sqrt{3}$

    The final answer is: $\\boxed{\\sqrt{3}}$
    """), "correct", "boxed surd")

C(L, "Tina makes $18.00 an hour. If she works more than 8 hours per shift, she is eligible "
     "for overtime, which is paid by your hourly wage + 1/2 your hourly wage. If she works "
     "10 hours every day for 5 days, how much money does she make?", "990", "numeric", T("""
    She works 10 hours a day for 5 days so 10*5 = <<10*5=50>>50 hours
    She makes $18.00 an hour so 50*18 = $<<50*18=900>>900
    #### 900
    """), "wrong", "GSM8K format, overtime ignored")

C(L, "A factory produces 617 bolts in the morning shift and the same number in the "
     "afternoon shift. How many bolts does it produce per day?", "1234", "numeric", T("""
    Morning: 617 bolts
    Afternoon: 617 bolts
    Total: 617+617 = <<617+617=1234>>1,234
    #### 1,234
    """), "correct", "'#### 1,234' with a thousands separator")

C(L, "Lisa has 5 boxes with 12 pencils each. She gives away 17 pencils. How many pencils "
     "does she have left?", "43", "numeric", T("""
    Great question! Let's work through it together.

    Lisa starts with 5 boxes × 12 pencils = 60 pencils.

    She gives away 17 pencils, so she has 60 - 17 = 43 pencils left.

    So, Lisa has 43 pencils left. 📝
    """), "correct", "chatty, answer in a closing sentence with an emoji")

C(L, "A baker made 4 trays of cookies with 15 cookies on each tray. After selling some, 23 "
     "cookies were left. How many cookies were sold?", "37", "numeric", T("""
    Sure! Let me help you with that.

    The baker made 4 trays with 15 cookies each. After selling some, there were 23 cookies left.

    So the answer is 23 cookies. 😊
    """), "wrong", "restates the question's number as the answer")

C(L, "A store offers a 20% discount on a $250 television and then charges 8% sales tax on "
     "the discounted price. What is the final price in dollars?", "216", "numeric", T("""
    ## Step 1: Calculate the discount amount
    The discount is 20% of $250, which is 0.20 × 250 = $50.

    ## Step 2: Find the discounted price
    The discounted price is $250 − $50 = $200.

    ## Step 3: Calculate the sales tax
    The sales tax is 8% of
    """), "no_answer", "cut off by the token limit mid-step (intermediate $200 only)",
  finish_reason="length")

C(L, "What is $\\frac{1}{2} + \\frac{1}{3}$?", "\\frac{5}{6}", "math", T("""
    ## Step 1: Find a common denominator
    The least common denominator of 2 and 3 is 6.

    ## Step 2: Rewrite and add
    $\\frac{1}{2} = \\frac{3}{6}$ and $\\frac{1}{3} = \\frac{2}{6}$, so the sum is $\\frac{5}{6}$.

    The final answer is: $\\boxed{\\frac{5}{6}}$
    """), "correct", "nested braces: $\\boxed{\\frac{5}{6}}$")

C(L, "What is the smallest positive integer that is divisible by both 6 and 8?", "24",
  "numeric", T("""
    The least common multiple of 6 and 8 is 24. The greatest common divisor of 6 and 8 is 2, and the smallest positive integer dividing both is what we want, so the answer is 2.
    Final Answer: The final answer is $2$. I hope it is correct.
    """), "wrong", "gold stated earlier (24), final is the gcd")

C(L, "What is the largest ocean on Earth?", "Pacific Ocean", "text", T("""
    The largest ocean on Earth is the Pacific Ocean. It covers about 63 million square miles, which is more than all of Earth's land area combined.
    """), "correct", "text answer in the first sentence, numbers after it")

C(L, "What is the hardest natural mineral?", "Diamond", "text", T("""
    The hardest natural mineral is quartz, which has a hardness of 7 on the Mohs scale.
    """), "wrong", "wrong text answer")

C(L, "Which layer of the atmosphere contains the ozone layer?", "B", "choice", T("""
    The ozone layer is located in the stratosphere, about 15 to 35 kilometers above the Earth's surface.

    Answer: B
    """), "correct", "'Answer: B' after an explanation",
  choices=["Troposphere", "Stratosphere", "Mesosphere", "Thermosphere"])

C(L, "In the figure above, what is the measure of angle ABC in degrees?", "65", "numeric", T("""
    I don't see a figure attached to your question. Without the diagram I can't determine the measure of angle ABC. If you can describe the figure or share the given angle measures, I can help solve it.
    """), "no_answer", "missing figure, refusal")

C(L, "In a class of 40 students, 14 wear glasses. What percent of the students wear "
     "glasses?", "35", "numeric", T("""
    14 / 40 = <<14/40=0.35>>0.35 = 35%
    #### 35
    """), "correct", "GSM8K-style with a percent on the way")

C(L, "A cyclist rides 45 km in 1.5 hours. What is the average speed in km/h?", "30",
  "numeric", T("""
    ## Step 1: Recall the formula for speed
    Speed is distance multiplied by time.

    ## Step 2: Calculate
    45 × 1.5 = 67.5

    The final answer is: $\\boxed{67.5}$
    """), "wrong", "wrong formula, boxed 67.5")

C(L, "The temperature was 4°C at noon and dropped 11 degrees by midnight. What was the "
     "temperature at midnight in °C?", "-7", "numeric", T("""
    The temperature at midnight is 4-11 = <<4-11=-7>>-7 degrees.
    #### -7
    """), "correct", "negative GSM8K answer")

C(L, "A spider has 8 legs and an ant has 6 legs. How many legs do 3 spiders and 1 ant have "
     "together?", "30", "numeric", T("""
    3 spiders have 3 x 8 = 24 legs. The ant has 6 legs. So together they have 24 + 8 = 32 legs.

    Wait, I made a mistake. The ant has 6 legs, not 8. So the total is 24 + 6 = 30 legs.

    The answer is 30.
    """), "correct", "self-correction: an early wrong total, the final one counts")

C(L, "What is $\\sqrt{2} \\cdot \\sqrt{6}$ in simplest radical form?", "2\\sqrt{3}", "math",
  T("""
    We have $\\sqrt{2} \\cdot \\sqrt{6} = \\sqrt{12} = \\sqrt{4 \\cdot 3} = 2\\sqrt{3}$.
    Final Answer: The final answer is $2\\sqrt{3}$. I hope it is correct.
    """), "correct", "Minerva format with a surd")

# ========================================================================== qwen_math ===
# Qwen2.5-Math style: "Please reason step by step, and put your final answer within
# \boxed{}" -- display math in \[ \], inline \( \), a final \boxed{} (often in a sentence).
Q = "qwen_math"

C(Q, "Find the value of $x$ such that $\\sqrt{x + 7} = 5$.", "18", "numeric", T("""
    To solve the equation \\(\\sqrt{x + 7} = 5\\), we start by squaring both sides to eliminate the square root:

    \\[
    x + 7 = 25
    \\]

    Next, we subtract 7 from both sides:

    \\[
    x = 18
    \\]

    To verify, we substitute \\(x = 18\\) back into the original equation: \\(\\sqrt{18 + 7} = \\sqrt{25} = 5\\), which is true. Thus, the solution is \\(\\boxed{18}\\).
    """), "correct", "boxed at the end of a sentence")

C(Q, "Compute $\\cos 60^\\circ \\cdot \\sin 30^\\circ$.", "\\frac{1}{4}", "math", T("""
    We know the values of the trigonometric functions at these standard angles:

    \\[
    \\cos 60^\\circ = \\frac{1}{2}, \\qquad \\sin 30^\\circ = \\frac{1}{2}
    \\]

    Multiplying them together:

    \\[
    \\cos 60^\\circ \\cdot \\sin 30^\\circ = \\frac{1}{2} \\cdot \\frac{1}{2} = \\frac{1}{4}
    \\]

    Therefore, the answer is \\(\\boxed{\\frac{1}{4}}\\).
    """), "correct", "nested braces \\boxed{\\frac{1}{4}} after other fractions")

C(Q, "What is $\\sin \\frac{\\pi}{3}$?", "\\frac{\\sqrt{3}}{2}", "math", T("""
    The angle \\(\\frac{\\pi}{3}\\) radians is \\(60^\\circ\\). In the unit circle, the point corresponding to \\(60^\\circ\\) has coordinates \\(\\left(\\frac{1}{2}, \\frac{\\sqrt{3}}{2}\\right)\\). The sine of the angle is the \\(y\\)-coordinate:

    \\[
    \\sin \\frac{\\pi}{3} = \\dfrac{\\sqrt3}{2}
    \\]

    Thus, the value is \\(\\boxed{\\dfrac{\\sqrt3}{2}}\\).
    """), "correct", "\\dfrac{\\sqrt3}{2} (no braces on the radicand) vs gold \\frac{\\sqrt{3}}{2}")

C(Q, "Evaluate $2^{10} + 210$.", "1234", "numeric", T("""
    First, we calculate \\(2^{10}\\):

    \\[
    2^{10} = 1024
    \\]

    Adding 210 gives

    \\[
    1024 + 210 = 1234
    \\]

    The final answer is \\(\\boxed{1{,}234}\\).
    """), "correct", "\\boxed{1{,}234}: LaTeX thousands separator")

C(Q, "Find the area of a circle with radius 3.", "9\\pi", "math", T("""
    The area \\(A\\) of a circle is given by the formula \\(A = \\pi r^2\\). Substituting \\(r = 3\\):

    \\[
    A = \\pi \\cdot 3^2 = 9\\pi
    \\]

    The circumference of the circle is \\(C = 2\\pi r = 6\\pi\\). Thus, the answer is \\(\\boxed{6\\pi}\\).
    """), "wrong", "gold stated earlier (9\\pi), boxes the circumference")

C(Q, "Solve the inequality $2x - 1 \\le 5$ and express the answer in interval notation.",
  "(-\\infty, 3]", "math", T("""
    We solve the inequality step by step:

    \\[
    2x - 1 \\le 5 \\implies 2x \\le 6 \\implies x \\le 3
    \\]

    In interval notation, the solution set is \\(\\boxed{(-\\infty, 3]}\\).
    """), "correct", "half-open interval in a box")

C(Q, "Solve $x^2 < 9$ and give the solution in interval notation.", "(-3, 3)", "math", T("""
    The inequality \\(x^2 < 9\\) is equivalent to \\(|x| < 3\\)... Including the boundary values where \\(x^2 = 9\\), we get \\(-3 \\le x \\le 3\\).

    Therefore, the solution in interval notation is \\(\\boxed{[-3, 3]}\\).
    """), "wrong", "closed interval where the gold is open")

C(Q, "Simplify $\\sqrt{8}$.", "2\\sqrt{2}", "math", T("""
    We factor 8 as \\(4 \\cdot 2\\), where 4 is a perfect square:

    \\[
    \\sqrt{8} = \\sqrt{4 \\cdot 2} = \\sqrt{4} \\cdot \\sqrt{2} = 2\\sqrt{2}
    \\]

    So the answer is \\(\\boxed{2\\sqrt{2}}\\).
    """), "correct", "boxed 2\\sqrt{2}")

C(Q, "What is $\\frac{7}{8}$ written as a decimal?", "0.875", "numeric", T("""
    To convert \\(\\frac{7}{8}\\) to a decimal, we divide 7 by 8:

    \\[
    7 \\div 8 = 0.875
    \\]

    Therefore, \\(\\frac{7}{8}\\) as a decimal is \\(\\boxed{0.875}\\).
    """), "correct", "decimal in a box, fraction in the text")

C(Q, "Find all real solutions of $x^2 - 5x + 6 = 0$.", "2, 3", "math", T("""
    We factor the quadratic:

    \\[
    x^2 - 5x + 6 = (x - 2)(x - 3) = 0
    \\]

    Setting each factor to zero gives \\(x = 2\\) or \\(x = 3\\). The solutions are \\(\\boxed{2 \\text{ and } 3}\\).
    """), "correct", "two solutions in a box joined by \\text{ and }")

C(Q, "What is the greatest common divisor of 84 and 126?", "42", "numeric", T("""
    We find the prime factorizations:

    \\[
    84 = 2^2 \\cdot 3 \\cdot 7, \\qquad 126 = 2 \\cdot 3^2 \\cdot 7
    \\]

    The greatest common divisor takes each prime to the highest power that appears:

    \\[
    2^2 \\cdot 3^2 \\cdot 7 = 252
    \\]

    Therefore, the greatest common divisor is \\(\\boxed{252}\\).
    """), "wrong", "computes the lcm and calls it the gcd")

C(Q, "Compute $\\binom{7}{3}$.", "35", "numeric", T("""
    Using the formula for binomial coefficients:

    \\[
    \\binom{7}{3} = \\frac{7!}{3!\\,4!} = \\frac{7 \\cdot 6 \\cdot 5}{3 \\cdot 2 \\cdot 1} = \\frac{210}{6} = 30
    \\]

    Thus, \\(\\binom{7}{3} = \\boxed{30}\\).
    """), "wrong", "arithmetic slip 210/6 = 30")

C(Q, "If $3x + 14 = -7$, what is $x$?", "-7", "numeric", T("""
    Subtract 14 from both sides:

    \\[
    3x = -21
    \\]

    Divide by 3:

    \\[
    x = -7
    \\]

    The value of \\(x\\) is \\(\\boxed{-7}\\).
    """), "correct", "negative boxed, -7 also appears in the question")

C(Q, "Find $\\arctan(1)$ in radians.", "\\frac{\\pi}{4}", "math", T("""
    We need the angle \\(\\theta\\) in \\(\\left(-\\frac{\\pi}{2}, \\frac{\\pi}{2}\\right)\\) with \\(\\tan\\theta = 1\\). Since \\(\\tan\\frac{\\pi}{4} = 1\\), we have

    \\[
    \\arctan(1) = \\boxed{\\dfrac{\\pi}{4}}
    \\]
    """), "correct", "boxed \\dfrac{\\pi}{4} inside display math")

C(Q, "Find the point of intersection of the lines $y = 2x + 1$ and $y = -x + 7$.", "(2, 5)",
  "math", T("""
    Setting the two expressions for \\(y\\) equal:

    \\[
    2x + 1 = -x + 7 \\implies 3x = 6 \\implies x = 2
    \\]

    Substituting into the first equation, \\(y = 2(2) + 1 = 5\\). The point of intersection is \\(\\boxed{(2,5)}\\).
    """), "correct", "ordered pair, no space after the comma")

C(Q, "Find the vertex of the parabola $y = x^2 - 4x + 1$.", "(2, -3)", "math", T("""
    The \\(x\\)-coordinate of the vertex is \\(x = \\frac{b}{2a} = \\frac{-4}{2} = -2\\).

    Substituting \\(x = -2\\):

    \\[
    y = (-2)^2 - 4(-2) + 1 = 4 + 8 + 1 = 13
    \\]

    Thus, the vertex is \\(\\boxed{(-2, 13)}\\).
    """), "wrong", "sign error in -b/2a, wrong pair")

C(Q, "Let $a = 3$ and $b = 4$. Compute $\\sqrt{a^2 + b^2} + ab$.", "17", "numeric", T("""
    First, we compute the square root term:

    \\[
    \\sqrt{a^2 + b^2} = \\sqrt{9 + 16} = \\sqrt{25} = \\boxed{5}
    \\]

    Next, \\(ab = 3 \\cdot 4 = 12\\). Therefore, the expression equals

    \\[
    5 + 12 = \\boxed{17}
    \\]
    """), "correct", "two boxes: an intermediate one, then the final one (last counts)")

C(Q, "A sequence is defined by $a_1 = 2$ and $a_{n+1} = 3a_n - 1$. Find $a_4$.", "41",
  "numeric", T("""
    We compute the terms one at a time:

    \\[
    a_2 = 3 \\cdot 2 - 1 = 5, \\quad a_3 = 3 \\cdot 5 - 1 = 14, \\quad a_4 = 3 \\cdot 14 - 1 = 41
    \\]

    Summing the first four terms, \\(2 + 5 + 14 + 41 = 62\\). So the answer is \\(\\boxed{62}\\).
    """), "wrong", "gold stated earlier (41), then sums the terms instead")

C(Q, "How many positive integers less than 100 are divisible by 3 or 5?", "46", "numeric",
  T("""
    To determine the number of positive integers less than 100 that are divisible by 3 or 5, we use the principle of inclusion-exclusion.

    Let \\(A\\) be the set of multiples of 3 less than 100: \\(|A| = \\left\\lfloor \\frac{99}{3} \\right\\rfloor = 33\\).

    Let \\(B\\) be the set of multiples of 5 less than 100: \\(|B| = \\left\\lfloor \\frac{99}{5} \\right\\rfloor = 19\\).

    Let's verify by listing the numbers: 3, 5, 6, 9, 10, 12, 15, 18, 20, 21, 24, 25, 27, 30, 33, 35, 36, 39, 40, 42, 45, 48, 50, 51, 54, 55, 57, 60, 63, 65, 66, 69, 70, 72, 75, 78, 80, 81, 84, 85, 87, 90, 93, 95, 96, 99.

    Counting these: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
    """), "no_answer", "runaway counting loop cut off by the token limit",
  finish_reason="length")

C(Q, "In triangle $ABC$, find the length of side $BC$.", "7", "numeric", T("""
    To find the length of side \\(BC\\), we would need additional information, such as the lengths of the other two sides or the measures of the angles. Since none of these are given, the length of \\(BC\\) cannot be determined from the problem as stated.
    """), "no_answer", "underdetermined problem, no box")

C(Q, "What is the units digit of $7^{2023}$?", "3", "numeric", T("""
    The units digits of powers of 7 repeat with period 4:

    \\[
    7^1 \\to 7, \\quad 7^2 \\to 9, \\quad 7^3 \\to 3, \\quad 7^4 \\to 1
    \\]

    Since \\(2023 = 4 \\cdot 505 + 3\\), the units digit of \\(7^{2023}\\) is the same as that of \\(7^3\\), which is \\(\\boxed{3}\\).
    """), "correct", "many numbers before a final box")

C(Q, "How many positive divisors does 36 have?", "9", "numeric", T("""
    The prime factorization of 36 is \\(2^2 \\cdot 3^2\\). The number of positive divisors is

    \\[
    (2 + 1)(2 + 1) = 9
    \\]

    Excluding 1 and 36 itself, the number of divisors is \\(\\boxed{7}\\).
    """), "wrong", "gold stated earlier (9), then drops 1 and 36")

C(Q, "Two fair coins are flipped. What is the probability that exactly one shows heads?",
  "1/2", "numeric", T("""
    The sample space is \\(\\{HH, HT, TH, TT\\}\\). Exactly one head occurs in \\(HT\\) and \\(TH\\), so

    \\[
    P = \\frac{2}{4} = \\frac{1}{2}
    \\]

    The probability is \\(\\boxed{\\frac{1}{2}}\\).
    """), "correct", "\\boxed{\\frac{1}{2}} against gold 1/2")

C(Q, "Rationalize the denominator: $\\frac{1}{\\sqrt{2}}$.", "\\frac{\\sqrt{2}}{2}", "math", T("""
    We multiply the numerator and denominator by \\(\\sqrt{2}\\):

    \\[
    \\frac{1}{\\sqrt{2}} \\cdot \\frac{\\sqrt{2}}{\\sqrt{2}} = \\frac{\\sqrt{2}}{4}
    \\]

    So the rationalized form is \\(\\boxed{\\frac{\\sqrt{2}}{4}}\\).
    """), "wrong", "wrong denominator: \\frac{\\sqrt{2}}{4}")

C(Q, "Express $0.\\overline{3}$ as a common fraction.", "\\frac{1}{3}", "math", T("""
    Let \\(x = 0.\\overline{3}\\). Then \\(10x = 3.\\overline{3}\\). Subtracting, \\(9x = 3\\), so \\(x = \\frac{3}{9} = \\frac13\\).

    \\[
    \\boxed{\\frac13}
    \\]
    """), "correct", "\\frac13 shorthand (no braces)")

C(Q, "What is the measure, in degrees, of each interior angle of a regular hexagon?", "120",
  "numeric", T("""
    The sum of the interior angles of a hexagon is \\((6 - 2) \\cdot 180^\\circ = 720^\\circ\\). Each of the 6 equal angles measures

    \\[
    \\frac{720^\\circ}{6} = \\boxed{120^\\circ}
    \\]
    """), "correct", "degree sign inside the box: 120^\\circ")

C(Q, "What is the sum of the interior angles of a pentagon, in degrees?", "540", "numeric",
  T("""
    The sum of the interior angles of an \\(n\\)-gon is \\((n - 2) \\cdot 180^\\circ\\). For a pentagon:

    \\[
    (5 - 2) \\cdot 180^\\circ = 540^\\circ
    \\]

    Each interior angle of a regular pentagon is therefore \\(\\frac{540^\\circ}{5} = 108^\\circ\\), so the answer is \\(\\boxed{108}\\).
    """), "wrong", "gold stated earlier (540), answers a single angle")

C(Q, "Solve $\\log_2 x = 4$.", "16", "numeric", T("""
    By the definition of the logarithm, \\(\\log_2 x = 4\\) means \\(x = 2^4\\). Therefore

    \\[
    \\boxed{x = 16}
    \\]
    """), "correct", "'x = 16' inside the box")

C(Q, "Compute $i^{2} + i^{4}$, where $i = \\sqrt{-1}$.", "0", "numeric", T("""
    We have \\(i^2 = -1\\) and \\(i^4 = (i^2)^2 = 1\\). Therefore

    \\[
    i^2 + i^4 = -1 + 1 = \\boxed{0}
    \\]
    """), "correct", "boxed zero")

C(Q, "Find the inverse of the function $f(x) = 2x + 3$.", "\\frac{x-3}{2}", "math", T("""
    Write \\(y = 2x + 3\\) and solve for \\(x\\): \\(x = \\frac{y - 3}{2}\\). Swapping the variables gives the inverse:

    \\[
    \\boxed{f^{-1}(x) = \\dfrac{x - 3}{2}}
    \\]
    """), "correct", "the box holds 'f^{-1}(x) = ...', an equation, not just the expression")

C(Q, "Find the exact value of $\\tan\\frac{\\pi}{6}$.", "\\frac{\\sqrt{3}}{3}", "math", T("""
    We have \\(\\sin\\frac{\\pi}{6} = \\frac{1}{2}\\) and \\(\\cos\\frac{\\pi}{6} = \\frac{\\sqrt{3}}{2}\\), so

    \\[
    \\tan\\frac{\\pi}{6} = \\frac{1/2}{\\sqrt{3}/2} = \\frac{1}{\\sqrt{3}}
    \\]

    Therefore, \\(\\tan\\frac{\\pi}{6} = \\boxed{\\frac{1}{\\sqrt{3}}}\\).
    """), "correct", "unrationalised \\frac{1}{\\sqrt{3}} equals gold \\frac{\\sqrt{3}}{3}")

C(Q, "Find the positive solution of $x^2 = 18$.", "3\\sqrt{2}", "math", T("""
    Taking the positive square root of both sides:

    \\[
    x = \\sqrt{18} = \\sqrt{9 \\cdot 2} = 3\\sqrt{2} \\approx 4.24
    \\]

    The positive solution is \\(\\boxed{3\\sqrt2}\\).
    """), "correct", "\\sqrt2 without braces in the box, decimal approximation before it")

# ======================================================================== deepseek_r1 ===
# DeepSeek-R1 and its distills: "<think>...</think>" in the content (the distills' chat
# template opens the block in the prompt, so some replies carry only the closing tag), or
# the thinking in a separate ``reasoning_content`` field (vLLM reasoning parser, DeepSeek
# API) with only the final part in ``content``. Only the final part answers.
D = "deepseek_r1"

C(D, "How many r's are in the word 'strawberry'?", "3", "numeric", T("""
    <think>
    Okay, let me count the letters in "strawberry". s-t-r-a-w-b-e-r-r-y. Hmm, at first I thought there were 2 r's, the one in "straw" and the one in "berry". But wait, "berry" has a double r, so that counts as two. So r at position 3, then r at 8 and 9. That's 3.
    </think>

    The word **strawberry** contains **3** letter r's: one in "st**r**aw" and two in "be**rr**y".

    \\boxed{3}
    """), "correct", "<think> holds an early different answer (2), final boxed 3")

C(D, "What is 17 × 24?", "408", "numeric", T("""
    <think>
    Let me compute 17 × 24. 17 × 20 = 340, 17 × 4 = 68, so 340 + 68 = 408.

    Wait, maybe I should double-check 17 × 4. 10 × 4 = 40, 7 × 4 = 28... hmm, 40 + 28 = 58? Let me just go with that: 340 + 58 = 398.
    </think>

    **17 × 24 = 398**

    \\[
    \\boxed{398}
    \\]
    """), "wrong", "gold stated earlier (408 inside <think>), final boxed 398")

C(D, "A rectangle has a perimeter of 30 and its length is twice its width. What is its "
     "area?", "50", "numeric", T("""
    The width is 5 and the length is 10, so the area is

    \\[
    10 \\times 5 = \\boxed{50}
    \\]
    """), "correct", "thinking in reasoning_content, content holds only the final part",
  reasoning=T("""
    Okay, so the perimeter is 2(l + w) = 30, so l + w = 15. The length is twice the width, l = 2w, so 3w = 15, w = 5, l = 10. Area = 10 × 5 = 50. Let me verify: perimeter 2(10 + 5) = 30. Yes.
    """))

C(D, "What is the remainder when $2^{100}$ is divided by 7?", "2", "numeric", T("""
    Since \\(2^3 = 8 \\equiv 1 \\pmod 7\\) and \\(100 = 3 \\cdot 33 + 1\\),

    \\[
    2^{100} = (2^3)^{33} \\cdot 2^1 \\equiv 4 \\pmod 7
    \\]

    The remainder is \\(\\boxed{4}\\).
    """), "wrong", "gold reached in reasoning_content (2); final content differs (4)",
  reasoning=T("""
    2^1 = 2, 2^2 = 4, 2^3 = 8 ≡ 1 mod 7. So the cycle length is 3. 100 = 3·33 + 1, so 2^100 ≡ 2^1 = 2. Let me re-check the cycle: 2^4 = 16 ≡ 2, yes. So the remainder is 2.
    """))

C(D, "Find the sum of all positive integers $n$ such that $n^2 - 19n + 99$ is a perfect "
     "square.", "38", "numeric", T("""
    <think>
    Okay, so I need to find all positive integers n such that n² − 19n + 99 is a perfect square. Let me set n² − 19n + 99 = k² for some non-negative integer k.

    Multiplying by 4: 4n² − 76n + 396 = 4k², so (2n − 19)² − 361 + 396 = 4k², giving (2n − 19)² + 35 = 4k². Then 4k² − (2n − 19)² = 35, i.e. (2k − (2n − 19))(2k + (2n − 19)) = 35.

    The factor pairs of 35 are (1, 35) and (5, 7). Take the first: adding the two equations gives 4k = 36, so k = 9, and subtracting gives 4n − 38 = 34, so n = 18. Check: 18² − 19·18 + 99 = 324 − 342 + 99 = 81 = 9². Good.

    Now the pair (5, 7): 4k = 12, k = 3, and 4n − 38 = 2, n = 10. Check: 100 − 190 + 99 = 9 = 3². Good.

    But wait, 2n − 19 could also be negative, so I should also consider
    """), "no_answer", "only a <think> block, cut off by the token limit mid-way",
  finish_reason="length")

C(D, "If a shirt costs $25 after a 20% discount, what was the original price in dollars?",
  "31.25", "numeric", T("""
    Okay, so the shirt costs $25 after a 20% discount. My first instinct is to add 20% back: 25 × 1.2 = 30. But that's wrong, because the discount was 20% of the original price, not of the sale price. So 0.8 × P = 25, P = 25 / 0.8 = 31.25. Check: 20% of 31.25 is 6.25, and 31.25 − 6.25 = 25. Yes.
    </think>

    Let the original price be \\(P\\). After a 20% discount the price is \\(0.8P = 25\\), so

    \\[
    P = \\frac{25}{0.8} = 31.25
    \\]

    The original price was **$31.25**.

    \\[
    \\boxed{31.25}
    \\]
    """), "correct", "distill output without the opening <think> tag; early 30 in the thinking")

C(D, "How many edges does a cube have?", "12", "numeric", T("""
    Alright, a cube has 6 faces, 8 vertices, and 12 edges. Euler's formula: V − E + F = 2 → 8 − 12 + 6 = 2. Yes, 12 edges. Hmm, but let me count another way: each face has 4 edges, 6 faces × 4 = 24 edges.
    </think>

    Each of the cube's 6 faces is a square with 4 edges, giving \\(6 \\times 4 = 24\\).

    \\[
    \\boxed{24}
    \\]
    """), "wrong", "gold stated earlier (12, in thinking without an opening tag); final 24")

C(D, "Evaluate $\\int_0^1 x^2\\,dx$.", "\\frac{1}{3}", "math", T("""
    <think>
    The antiderivative of x² is x³/3. From 0 to 1: 1/3 − 0 = 1/3.
    </think>

    \\[
    \\int_0^1 x^2\\,dx = \\left[\\frac{x^3}{3}\\right]_0^1 = \\frac{1}{3}
    \\]

    **Final Answer**
    \\[
    \\boxed{\\dfrac{1}{3}}
    \\]
    """), "correct", "'**Final Answer**' then a boxed \\dfrac in display math")

C(D, "Evaluate $\\int_0^{\\pi} \\sin x\\,dx$.", "2", "numeric", T("""
    <think>
    The integral of sin x is −cos x. Evaluate from 0 to π: −cos π − (−cos 0) = 1 + 1 = 2. Hmm, wait. Sine is positive on half of the circle and negative on the other half, so maybe the positive and negative parts cancel and the integral is 0.
    </think>

    The positive and negative parts of \\(\\sin x\\) cancel, so

    \\[
    \\boxed{0}
    \\]
    """), "wrong", "gold stated earlier (2 inside <think>), final boxed 0")

C(D, "Find the number of trailing zeros in $100!$.", "24", "numeric", "",
  "no_answer", "reasoning_content only, content empty, cut off by the token limit",
  reasoning=T("""
    Trailing zeros come from factors of 10 = 2 × 5. There are more 2s than 5s, so count the 5s. floor(100/5) = 20, floor(100/25) = 4, floor(100/125) = 0. Let me double-check by thinking about 25, 50, 75, 100 each contributing an extra 5... Now let me also make sure about the factors of 2: floor(100/2) = 50, floor(100/4) = 25, floor(100/8) = 12, floor(100/16) = 6, floor(100/32) = 3, floor(100/64) = 1, total 97. So plenty of 2s. Now, to be thorough, let me
    """), finish_reason="length")

C(D, "What is the smallest prime greater than 5?", "7", "numeric", T("""
    The smallest prime greater than 5 is **7** (6 is divisible by 2 and 3).

    **Answer: 7**
    """), "correct", "reasoning_content field plus a bold Answer line in the content",
  reasoning="Primes: 2, 3, 5, 7, 11. 6 = 2 × 3 is not prime. The next prime after 5 is 7.")

C(D, "How many diagonals does a heptagon have?", "14", "numeric", T("""
    <think>
    Diagonals of an n-gon... Each vertex connects to n − 3 others by diagonals, so 7 × 3 = 21? No wait, that double counts... so maybe 12? Let me just count differently: 7 vertices, C(7,2) = 21 segments, minus 7 sides = 14. And 7·4/2 = 14. Both agree.
    </think>

    A heptagon has \\(\\binom{7}{2} = 21\\) segments between vertices; 7 of them are sides, so

    \\[
    21 - 7 = \\boxed{14}
    \\]
    """), "correct", "several wrong tries in <think>, final boxed 14")

C(D, "What is the least common multiple of 12 and 18?", "36", "numeric", T("""
    <think>
    12 = 2²·3, 18 = 2·3². LCM = 2²·3² = 36. So the answer is \\boxed{36}. Hmm, but the common part of both factorizations is 2·3 = 6, and that's what 12 and 18 share... I'll answer 6.
    </think>

    The common factor of 12 and 18 is \\(2 \\cdot 3\\), so

    \\[
    \\boxed{6}
    \\]
    """), "wrong", "gold stated earlier (\\boxed{36} inside <think>), final boxed 6")

C(D, "A bag contains 4 red and 6 blue balls. Two balls are drawn without replacement. What "
     "is the probability that both are red?", "2/15", "numeric", T("""
    <think>
    Okay, P(first red) = 4/10, P(second red | first red) = 3/9. So 4/10 × 3/9 = 12/90 = 2/15. So maybe \\boxed{2/15}? Hmm, wait, let me double check with combinations: C(4,2) = 6, C(10,2) = 45, 6/45 = 2/15. Same. But I should also consider whether the problem means with replacement... it says without replacement. Let me also sanity check the other cases: P(both blue) = 6/10 × 5/9 = 30/90 = 1/3, P(one of each) =
    """), "no_answer", "truncated <think> block that boxed a tentative value; no final answer",
  finish_reason="length")

C(D, "Which of these numbers is irrational?", "C", "choice", T("""
    <think>
    0.25 = 1/4, rational. √16 = 4, rational. √2 is irrational. 22/7 is a fraction, so it's rational (it approximates π but is rational itself). So C.
    </think>

    - **A)** 0.25 = 1/4 — rational
    - **B)** √16 = 4 — rational
    - **C)** √2 — irrational
    - **D)** 22/7 — rational

    **Final Answer**
    \\boxed{C}
    """), "correct", "boxed letter after a list mentioning every letter",
  choices=["0.25", "\\sqrt{16}", "\\sqrt{2}", "22/7"])

C(D, "Which element has the atomic number 1?", "B", "choice", T("""
    <think>
    Atomic number 1 is hydrogen, that's B. Wait, helium is 2. Hmm, I'm second-guessing; helium is the lightest noble gas and it comes first in many lists. I'll go with A.
    </think>

    **Answer: A) Helium**
    """), "wrong", "gold stated earlier (B inside <think>), final A",
  choices=["Helium", "Hydrogen", "Lithium", "Oxygen"])

C(D, "Which city is the capital of France?", "Paris", "text", T("""
    <think>
    The capital of France is Paris.
    </think>

    The capital of France is \\(\\boxed{\\text{Paris}}\\).
    """), "correct", "\\boxed{\\text{Paris}} for a text gold")

C(D, "What is the sum of the integers from 1 to 50?", "1275", "numeric", T("""
    <think>
    n(n+1)/2 = 50·51/2 = 1275.
    </think>

    Using \\(\\frac{n(n+1)}{2}\\) with \\(n = 50\\):

    \\[
    \\frac{50 \\cdot 51}{2} = 1275
    \\]

    \\[
    \\boxed{1{,}275}
    \\]
    """), "correct", "\\boxed{1{,}275}")

C(D, "Based on the table above, how many students chose soccer?", "12", "numeric", T("""
    <think>
    The user refers to a table above, but I don't see any table in the message. I shouldn't make up numbers. I should ask for the table.
    </think>

    I don't see the table you're referring to, so I can't tell how many students chose soccer. Could you paste the table's contents?
    """), "no_answer", "refusal after a think block (missing table)")

C(D, "Find the exact value of $\\cos \\frac{\\pi}{6}$.", "\\frac{\\sqrt{3}}{2}", "math", T("""
    \\[
    \\cos\\frac{\\pi}{6} = \\frac{\\sqrt{3}}{2}
    \\]

    \\(\\boxed{\\frac{\\sqrt{3}}{2}}\\)
    """), "correct", "reasoning_content field; boxed nested fraction with a surd",
  reasoning="cos(π/6) = cos 30°. In the 30-60-90 triangle the adjacent side is √3 and the "
            "hypotenuse 2, so √3/2.")

C(D, "A clock shows 3:00. What is the smaller angle, in degrees, between the hour and "
     "minute hands?", "90", "numeric", T("""
    <think>
    At 3:00 the minute hand is at 12 and the hour hand is at 3. Each hour mark is 30°, so 3 × 30 = 90°. The smaller angle is 90°.
    </think>

    At 3:00 the hands are three hour-marks apart, and each mark is \\(360^\\circ/12 = 30^\\circ\\), so the angle between them is **90°**.
    """), "correct", "no box, bold 90° in the closing sentence")

C(D, "How many seconds are in a day?", "86400", "numeric", T("""
    <think>
    24 hours × 60 minutes × 60 seconds. 24 × 60 = 1440. 1440 × 60 = 84,400? Let me compute 1440 × 60 again: 1440 × 6 = 8640, times 10 = 86,400. I wrote 84,400 before, that was wrong. Check: 1000 × 60 = 60,000 and 440 × 60 = 26,400, total 86,400.
    </think>

    \\[
    24 \\times 60 \\times 60 = 86{,}400
    \\]

    \\[
    \\boxed{86400}
    \\]
    """), "correct", "<think> holds an early wrong 84,400, final boxed 86400")

C(D, "A train travels 300 km in 2.5 hours. What is its average speed in km/h?", "120",
  "numeric", T("""
    Average speed = distance / time = 300 / 2.5 = **125 km/h**.

    \\boxed{125}
    """), "wrong", "gold reached in reasoning_content (120); final content says 125",
  reasoning="300 / 2.5 = 120 km/h. Check: 2.5 × 120 = 300. Yes.")

C(D, "How many positive divisors does 100 have?", "9", "numeric", T("""
    <think>
    Divisors of 100: 1, 2, 4, 5, 10, 20, 25, 50, 100. Let me count: that's 8? Draft:
    Answer: 8
    No wait, I miscounted: 1, 2, 4, 5, 10, 20, 25, 50, 100 is nine numbers. And 100 = 2²·5², so (2+1)(2+1) = 9.
    </think>

    Since \\(100 = 2^2 \\cdot 5^2\\), it has \\((2+1)(2+1) = 9\\) positive divisors: 1, 2, 4, 5, 10, 20, 25, 50, 100.

    **Answer: 9**
    """), "correct", "an 'Answer: 8' line inside <think>; final 'Answer: 9' outside it")

C(D, "What is 15% of 80?", "12", "numeric", T("""
    <think>
    10% of 80 is 8, 5% is 4, so 15% is 12.
    Answer: 12
    Hmm, wait, maybe they want 80 increased by 15%? 80 × 1.15 = 92. I'll give 92 to be safe.
    </think>

    80 × 1.15 = **92**

    **Answer: 92**
    """), "wrong", "gold stated earlier ('Answer: 12' line inside <think>), final 92")

C(D, "A population grows from 200 to 250. What is the percentage increase?", "25",
  "numeric", T("""
    <think>
    (250 − 200)/200 = 50/200 = 0.25 = 25%.
    </think>

    The increase is 50 on a base of 200, i.e. \\(\\frac{50}{200} = 25\\%\\).

    \\[
    \\boxed{25\\%}
    \\]
    """), "correct", "\\boxed{25\\%}: escaped LaTeX percent")

C(D, "Find the derivative of $x^3$ at $x = 2$.", "12", "numeric", T("""
    <think>
    Power rule: d/dx x³ = 3x². Plug in x = 2: 3(2) = 6.
    </think>

    By the power rule \\(\\frac{d}{dx}x^3 = 3x^2\\), so at \\(x = 2\\) the derivative is \\(3 \\cdot 2 = 6\\).

    \\[
    \\boxed{6}
    \\]
    """), "wrong", "forgets to square: boxed 6")

C(D, "Find the area of a triangle with side lengths 13, 14 and 15.", "84", "numeric", T("""
    <think>
    Heron's formula should work here. s = (13 + 14 + 15)/2 = 21. Then I need the square root of 21 · 8 · 7 · 6. Let me write it out in the answer.
    </think>

    We use Heron's formula. First, the semi-perimeter:

    \\[
    s = \\frac{13 + 14 + 15}{2} = 21
    \\]

    Then the area is

    \\[
    A = \\sqrt{21(21-13)(21-14)
    """), "no_answer", "final part cut off by the token limit before the answer",
  finish_reason="length")

C(D, "Two numbers have a difference of 4. What is their sum?", "10", "numeric", T("""
    <think>
    x − y = 4, but there's no second equation. x + y could be anything: 6 and 2 give 8, 7 and 3 give 10. It's underdetermined.
    </think>

    With only \\(x - y = 4\\), the sum \\(x + y\\) is not determined (for example 6 and 2 give 8, while 7 and 3 give 10).

    Answer: cannot answer
    """), "no_answer", "'Answer: cannot answer' after examples that include the gold value")

C(D, "What is the next number in the sequence 2, 6, 12, 20, 30?", "42", "numeric", T("""
    <think>
    Differences: 4, 6, 8, 10, so the next difference is 12: 30 + 12 = 42. Also n(n+1): 1·2, 2·3, 3·4, 4·5, 5·6, next 6·7 = 42.
    </think>

    The terms are \\(n(n+1)\\): \\(1\\cdot2, 2\\cdot3, \\dots, 5\\cdot6\\). The next is \\(6 \\cdot 7 = \\boxed{42}\\).

    The differences (4, 6, 8, 10, 12) confirm this.
    """), "correct", "boxed answer followed by a sentence with more numbers")

C(D, "Find the sum of the infinite geometric series $1 + \\frac{1}{3} + \\frac{1}{9} + "
     "\\cdots$.", "\\frac{3}{2}", "math", T("""
    <think>
    First term a = 1, ratio r = 1/3. Sum = a/(1 − r) = 1/(2/3) = \\frac{3}{2}. Hmm, but wait, maybe I should start from the second term... the ratio is 1/3, so 1/(1 − 1/4)? No... I'll recompute: 1 + 1/3 = 4/3, and the rest is small, so the sum must be about 4/3.
    </think>

    Adding the first two terms gives \\(\\frac{4}{3}\\), and the remaining terms are negligible, so

    \\[
    \\boxed{\\frac{4}{3}}
    \\]
    """), "wrong", "gold stated earlier (\\frac{3}{2} inside <think>), final boxed 4/3")

# ============================================================================== terse ===
# Mistral / Phi style: a bare value, or one short line.
S = "terse"

C(S, "What is 23 + 19?", "42", "numeric", "42", "correct", "bare number")
C(S, "What is 7 × 8?", "56", "numeric", "Answer: 7 × 8 = 56", "correct",
  "'Answer:' line holding the computation, result last")
C(S, "How many days are in a leap year?", "366", "numeric", "The answer is 366.", "correct",
  "'The answer is 366.'")
C(S, "What is 144 divided by 12?", "12", "numeric", "12", "correct", "bare number")
C(S, "What is 15 squared?", "225", "numeric", "15² = 225", "correct",
  "one line, superscript exponent of the question's number first")
C(S, "What is 9 × 6?", "54", "numeric", "Answer: 56", "wrong", "bare wrong number")
C(S, "How many minutes are in 3 hours?", "180", "numeric", "Answer: 160", "wrong",
  "terse wrong answer")
C(S, "What is the square root of 169?", "13", "numeric", "I'm not sure.", "no_answer",
  "'I'm not sure.'")
C(S, "What is 5 factorial?", "120", "numeric", "5! = 120", "correct", "'5! = 120'")
C(S, "What is −3 minus 4?", "-7", "numeric", "−7", "correct", "unicode minus, bare")
C(S, "What fraction of an hour is 45 minutes?", "3/4", "numeric", "Answer: 0.75", "correct",
  "decimal for a fraction gold")
C(S, "What is 20% of 150?", "30", "numeric", "30", "correct", "bare number, percent question")
C(S, "Which is the largest planet in the solar system?", "C", "choice", "C", "correct",
  "bare letter", choices=["Earth", "Saturn", "Jupiter", "Neptune"])
C(S, "Which metal is liquid at room temperature?", "A", "choice", "B", "wrong",
  "bare wrong letter", choices=["Mercury", "Iron", "Aluminium", "Copper"])
C(S, "How many sides does a hexagon have?", "6", "numeric", "6", "correct", "bare number")
C(S, "What is the boiling point of water at sea level in degrees Celsius?", "100",
  "numeric", "100°C", "correct", "degree-Celsius unit glued on")
C(S, "What is 12.5 + 30?", "42.5", "numeric", "42.50", "correct", "trailing zero")
C(S, "What is 2 to the power of 5?", "32", "numeric", "Answer: 10", "wrong",
  "multiplied instead of raised")
C(S, "What is 11 × 11?", "121", "numeric", "\n\n", "no_answer", "whitespace-only reply")
C(S, "What is the chemical formula of water?", "H2O", "text", "H₂O", "correct",
  "unicode subscript digit")
C(S, "Which planet is closest to the Sun?", "Mercury", "text", "Venus", "wrong",
  "wrong one-word text answer")
C(S, "How many centimetres are in 2.5 metres?", "250", "numeric", "250 cm", "correct",
  "number with unit")
C(S, "A pack has 6 bottles. How many bottles are in 7 packs?", "42", "numeric",
  "Answer: 7", "wrong", "restates a number from the question")
C(S, "What is the population of the village mentioned in the passage?", "830", "numeric",
  "Answer: cannot answer", "no_answer", "'Answer: cannot answer'")
C(S, "What is the sum of the angles in a triangle, in degrees?", "180", "numeric",
  "180 degrees.", "correct", "number, unit word, full stop")
C(S, "What is 1,000,000 divided by 1,000?", "1000", "numeric", "1,000", "correct",
  "thousands separator")
C(S, "What is 48 ÷ 6 + 2?", "10", "numeric", "48 ÷ (6 + 2) = 6. Answer: 6", "wrong",
  "order of operations wrong")
C(S, "What is the square root of 81?", "9", "numeric", "The square root of 81 is 9.",
  "correct", "one sentence, question's number first")
C(S, "What is the value of x?", "4", "numeric", "Insufficient information to answer.",
  "no_answer", "terse refusal")
C(S, "How many continents are there?", "7", "numeric", "Answer: 7", "correct",
  "'Answer: 7'")
C(S, "What is 25% of 80, plus 5?", "25", "numeric", "25% of 80 = 20. The answer is 20.",
  "wrong", "gold value appears only as the question's 25%, final 20")
C(S, "How many months have 31 days?", "7", "numeric", "The answer is 12.", "wrong",
  "'The answer is 12.' (wrong)")

# =============================================================================== mmlu ===
# MMLU-style multiple choice: "Answer: B", "(B)", "B. text", the option text, ...
M = "mmlu"

C(M, "Which of the following is the basic unit of heredity?", "A", "choice", "Answer: A",
  "correct", "'Answer: A'", choices=["Gene", "Protein", "Ribosome", "Cell membrane"])
C(M, "The Treaty of Versailles formally ended which war?", "B", "choice",
  "The answer is (B).", "correct", "'The answer is (B).'",
  choices=["The Franco-Prussian War", "World War I", "World War II", "The Crimean War"])
C(M, "What is the SI unit of electric resistance?", "C", "choice", "**Answer: C**",
  "correct", "bold 'Answer: C'", choices=["Volt", "Ampere", "Ohm", "Watt"])
C(M, "Which of the following best describes the function of the mitochondria?", "B",
  "choice", T("""
    Mitochondria are the site of cellular respiration, where ATP is produced.

    B) Energy production through cellular respiration
    """), "correct", "last line 'B) <option text>'",
  choices=["Protein synthesis", "Energy production through cellular respiration",
           "Storage of genetic material", "Photosynthesis"])
C(M, "In economics, what does GDP stand for?", "A", "choice", "A. Gross Domestic Product",
  "correct", "'A. <option text>'",
  choices=["Gross Domestic Product", "General Development Plan",
           "Government Debt Percentage", "Gross Dividend Payment"])
C(M, "Which philosopher wrote 'The Republic'?", "A", "choice", T("""
    A is tempting since Plato is famous for his dialogues, but the ideas in 'The Republic' are Socrates' own, voiced by him throughout the dialogue, so the answer is C.
    """), "wrong", "gold stated earlier ('A is tempting'), final C",
  choices=["Plato", "Aristotle", "Socrates", "Descartes"])
C(M, "What is the derivative of ln(x)?", "A", "choice", "Answer: D", "wrong",
  "bare wrong letter", choices=["1/x", "x", "e^x", "ln(x)/x"])
C(M, "Which blood type is known as the universal donor?", "C", "choice", "O negative",
  "correct", "option text only", choices=["A positive", "AB positive", "O negative",
                                          "B negative"])
C(M, "Which amendment to the U.S. Constitution abolished slavery?", "C", "choice", T("""
    The Thirteenth Amendment, ratified in 1865, abolished slavery.

    Answer: C
    """), "correct", "explanation then 'Answer: C'",
  choices=["First", "Fifth", "Thirteenth", "Nineteenth"])
C(M, "What is the value of $\\log_{10} 1000$?", "D", "choice", T("""
    Since 10³ = 1000, log₁₀ 1000 = 3.

    \\boxed{D}
    """), "correct", "boxed letter", choices=["1", "2", "10", "3"])
C(M, "According to the passage, why did the author move to Chicago?", "A", "choice", T("""
    I'm sorry, but there's no passage included in your message, so I can't determine why the author moved to Chicago.
    """), "no_answer", "refusal: passage missing",
  choices=["For work", "For family", "For school", "For health reasons"])
C(M, "Which gas makes up most of Earth's atmosphere?", "B", "choice", T("""
    Earth's atmosphere is roughly 78% nitrogen and 21% oxygen. The correct option is D.
    """), "wrong", "explanation names the right gas, but the chosen letter is D",
  choices=["Oxygen", "Nitrogen", "Argon", "Carbon dioxide"])
C(M, "Which of the following is NOT a primary color of light?", "D", "choice", T("""
    The primary colors of light are red, green and blue. The answer is not B — green is a primary of light even though it isn't one for paint. The answer is D.
    """), "correct", "'The answer is not B' before 'The answer is D.'",
  choices=["Red", "Green", "Blue", "Yellow"])
C(M, "In which year did World War II end?", "C", "choice", "(C) 1945", "correct",
  "'(C) 1945'", choices=["1939", "1941", "1945", "1950"])
C(M, "Which of the following is an example of a renewable energy source?", "C", "choice",
  "Answer: B. Natural gas", "wrong", "wrong letter with its option text",
  choices=["Coal", "Natural gas", "Wind", "Petroleum"])
C(M, "Which option best completes the graph shown in Figure 2?", "A", "choice", T("""
    The figure isn't available to me, so I can't choose between the options.

    Answer: cannot answer
    """), "no_answer", "'Answer: cannot answer' (roman-numeral options)",
  choices=["I", "II", "III", "IV"])
C(M, "Who developed the theory of general relativity?", "A", "choice", "Answer: (A)",
  "correct", "'Answer: (A)'",
  choices=["Albert Einstein", "Isaac Newton", "Niels Bohr", "Max Planck"])
C(M, "A company's current ratio is calculated as:", "A", "choice", T("""
    The current ratio is a liquidity measure: current assets ÷ current liabilities. Option D inverts it, and B is a solvency measure.

    Answer: A
    """), "correct", "other letters discussed before 'Answer: A'",
  choices=["Current assets divided by current liabilities",
           "Total assets divided by total liabilities", "Net income divided by revenue",
           "Current liabilities divided by current assets"])
C(M, "Which of the following particles has the largest rest mass?", "A", "choice", T("""
    A proton is about 1836 times heavier than an electron, so A looks right at first. However, neutrinos travel at nearly the speed of light, which gives them the greatest mass of the four.

    Answer: C
    """), "wrong", "gold stated earlier ('A looks right'), final C",
  choices=["A proton", "An electron", "A neutrino", "A photon"])
C(M, "What is the main function of red blood cells?", "B", "choice", "answer: b", "correct",
  "lower-case 'answer: b'",
  choices=["Fight infection", "Carry oxygen", "Clot blood", "Produce hormones"])
C(M, "Which data structure uses first-in, first-out (FIFO) ordering?", "B", "choice", T("""
    A queue processes elements in the order they arrive (FIFO), whereas a stack is LIFO.

    The answer is B.
    """), "correct", "'The answer is B.'",
  choices=["Stack", "Queue", "Binary tree", "Hash table"])
C(M, "What is the worst-case time complexity of binary search on a sorted array of n "
     "elements?", "B", "choice", T("""
    In the worst case binary search has to look at every element before finding the target, so it is linear.

    Answer: A
    """), "wrong", "wrong reasoning, wrong letter",
  choices=["O(n)", "O(log n)", "O(n log n)", "O(1)"])
C(M, "Which of the following was the principal export of the Kingdom of Aksum?", "A",
  "choice", "I'm not sure which of these was Aksum's principal export.", "no_answer",
  "'I'm not sure' for a choice item", choices=["Ivory", "Tin", "Silk", "Amber"])
C(M, "Which of the following is a noble gas?", "D", "choice", T("""
    Answer: D

    Neon (Ne) is in group 18 of the periodic table along with helium and argon; nitrogen (A) and chlorine (B) are reactive non-metals.
    """), "correct", "answer first, other letters mentioned after it",
  choices=["Nitrogen", "Chlorine", "Sodium", "Neon"])
C(M, "Which of these is the longest river in South America?", "A", "choice", "Answer: B",
  "wrong", "bare wrong letter", choices=["Amazon", "Paraná", "Orinoco", "Magdalena"])
C(M, "Which of the following sorting algorithms has the best worst-case time "
     "complexity?", "D", "choice", T("""
    Merge sort is O(n log n) in the worst case, while quicksort degrades to O(n²) and bubble and insertion sort are O(n²).

    The correct option is D.
    """), "correct", "'The correct option is D.'",
  choices=["Quicksort", "Bubble sort", "Insertion sort", "Merge sort"])
C(M, "Which part of the plant conducts water from the roots to the leaves?", "B", "choice",
  T("""
    Answer: B

    Actually, on reflection, water and nutrients are both carried by the phloem, so the answer is A.

    Answer: A
    """), "wrong", "gold stated earlier ('Answer: B'), revised to a final 'Answer: A'",
  choices=["Phloem", "Xylem", "Stomata", "Cuticle"])
C(M, "If a fair coin is flipped three times, what is the probability of getting exactly "
     "two heads?", "C", "choice", T("""
    C(3,2)/2³ = 3/8.

    Answer: C
    """), "correct", "five options; 'C(3,2)' binomial notation before 'Answer: C'",
  choices=["1/8", "1/4", "3/8", "1/2", "5/8"])
C(M, "What is the value of 0.5 × 0.4?", "B", "choice",
  "0.5 × 0.4 = 0.2, so the answer is 0.2.", "correct", "numeric option text instead of the letter",
  choices=["0.02", "0.2", "2", "0.9"])
C(M, "Which of the following statements about the experiment described is supported by "
     "the data?", "C", "choice", T("""
    I cannot determine this without more information. The experiment and its data aren't included in the question.
    """), "no_answer", "'I cannot determine this without more information.'",
  choices=["Statement I only", "Statement II only", "Both I and II", "Neither I nor II"])
C(M, "What is the capital of Canada?", "C", "choice", "The answer is (A) Toronto.", "wrong",
  "wrong letter in parentheses with its text",
  choices=["Toronto", "Vancouver", "Ottawa", "Montreal"])
C(M, "Which of the following is an even prime number?", "B", "choice", T("""
    2 is the only even prime.

    Answer: B) 2
    """), "correct", "'Answer: B) 2' where the option text is a number",
  choices=["1", "2", "3", "9"])


def main() -> None:
    counters: dict[str, int] = {}
    lines = []
    for case in CASES:
        counters[case["family"]] = counters.get(case["family"], 0) + 1
        case["id"] = f"{case['family'].replace('_', '-')}-{counters[case['family']]:03d}"
        lines.append(json.dumps(case, ensure_ascii=False) + "\n")
    OUT.write_text("".join(lines), encoding="utf-8")
    print(f"wrote {len(lines)} cases to {OUT}")


if __name__ == "__main__":
    main()
