"""The corpus's built-in sentence list (written for this project; no external text).

Short declarative, question and exclamation sentences of 5-12 words that together cover every
English phoneme many times, with plenty of bilabials (closures), rounded vowels (rounding) and open
vowels (jaw), the articulations the lip models must learn.
"""

from __future__ import annotations

SENTENCES: tuple[str, ...] = (
    "The blue boat floated past the old mill.",
    "Please put the map back on the big table.",
    "My mother made a warm apple pie.",
    "Who would move a room full of books?",
    "The cat sat on a mat by the open window.",
    "Bring me the box of paper from the back.",
    "We saw four small boats on the smooth lake.",
    "Why are you always so calm in the morning?",
    "Her voice was soft but firm.",
    "A good plan will help us finish by noon.",
    "The young boy threw the ball over the fence.",
    "Maybe the rain will stop before the match.",
    "I thought the movie was far too long.",
    "Put your shoes by the door, please.",
    "The judge asked for proof of the claim.",
    "Bob bought a bright purple umbrella.",
    "Our team played well despite the cold wind.",
    "The museum opens at nine on Monday.",
    "She wore a blue wool coat to the party.",
    "Look at the huge moon over the harbour.",
    "Did you remember to feed the fish?",
    "The bus was late again this morning.",
    "We need more milk, bread and butter.",
    "A quiet mouse hid beneath the wooden floor.",
    "The photographer smiled and raised the camera.",
    "Nobody knew where the money had gone.",
    "Mark the page before you close the book.",
    "Thank you for the lovely flowers.",
    "The water in the pool was bitterly cold.",
    "How much would a new bicycle cost?",
    "My brother plays the piano every evening.",
    "They found a map of the mountain path.",
    "The baby laughed at the bouncing puppy.",
    "Open the jar with a firm twist.",
    "Beware of the wet paint on the bench.",
    "Move the lamp a bit to the left.",
    "What a wonderful view from the balcony!",
    "The pilot spoke calmly to the passengers.",
    "Soup was served in big white bowls.",
    "I can hardly believe it is over.",
    "The farmer fed the cows before dawn.",
    "Our neighbour built a boat in his garage.",
    "Please bring two cups of hot chocolate.",
    "The storm broke the branches of the maple.",
    "You must be joking about the price.",
    "The museum guide was very patient with us.",
    "Pack the blue bag for the beach.",
    "Nothing moves in the frozen forest.",
    "We should meet by the pub at seven.",
    "She opened the mail with trembling hands.",
    "The orchestra played a beautiful tune.",
    "Whose boots are by the back door?",
    "A loud bang woke the whole family.",
    "Mop the floor and empty the bin.",
    "The doctor made a few more notes.",
    "Would you pour me a glass of orange juice?",
    "Bees buzzed around the purple blossoms.",
    "The market was busy on Saturday morning.",
    "Our boss moved the meeting to Thursday.",
    "Every problem has more than one answer.",
    "I promise I will call you tomorrow.",
    "The ship sailed through the narrow passage.",
    "Paul plays football in the park.",
    "The moon rose slowly above the hills.",
    "Could you move your car, please?",
    "My grandfather grew tomatoes and beans.",
    "The old bridge was painted bright blue.",
    "Be careful with the sharp knife.",
    "We watched the boats from the warm room.",
    "The puppy chewed my favourite shoe.",
    "Mum bought a bunch of ripe bananas.",
    "Please remember to lock the front door.",
    "The new museum is full of rare maps.",
    "Who told you about the surprise?",
    "A bowl of soup would be perfect now.",
    "Birds flew south before the winter.",
    "The child hummed a happy song.",
    "Pour the batter into a buttered pan.",
    "The mayor spoke about the new policy.",
    "I am proud of what we built together.",
    "Bobby dropped the plate on the floor.",
    "Maybe we should go home now.",
    "The whole room went quiet at once.",
    "My phone battery is almost empty.",
    "Put the butter back in the fridge.",
    "We lost the map somewhere in the woods.",
    "The boat moved smoothly over the waves.",
    "Nobody wants to work on a holiday.",
    "The painter mixed blue and yellow paint.",
    "Your room is a complete mess!",
    "Bring a warm blanket for the boat trip.",
    "The people waited patiently in the rain.",
    "Remember me to your mother and father.",
    "The tube was packed during the morning rush.",
    "Please open your books at page ninety.",
    "What time does the museum open?",
)

#: Sentences whose words say the emotion, for corpora made with ``text="emotional"``
#: (:class:`talkinghead.data.corpus.CorpusConfig`): a clip in emotion ``e`` reads one of ``EMOTIONAL_SENTENCES[e]``
#: (``neutral`` reads :data:`SENTENCES`), so the transcript tells the emotion, as real speech often does. Dimitra's
#: transcript condition (issue 13) can only be learned and measured on such data: in the default corpus every
#: sentence is read in every emotion, so the words carry nothing about the face. Written for this project.
EMOTIONAL_SENTENCES: dict[str, tuple[str, ...]] = {
    "happy": (
        "What a wonderful day, I am so glad you came!",
        "We won the prize and everybody is cheering.",
        "I love this song, it always makes me smile.",
        "Thank you so much, this is the best gift ever.",
        "My sister had a baby girl this morning!",
        "The holiday was perfect from start to finish.",
        "Good news, we are moving to a bigger home.",
        "I passed the exam with the top mark!",
        "Dinner with old friends is my favourite thing.",
        "The sun is out and the beach is waiting for us.",
        "You did it, I am so proud of you!",
        "Let us dance all night and celebrate.",
    ),
    "sad": (
        "I miss my grandmother every single day.",
        "Our old dog passed away last night.",
        "Nobody came to the party after all.",
        "I lost the job I worked so hard for.",
        "The letter said they would not be coming back.",
        "It feels so lonely in this empty house.",
        "We said goodbye at the station and I cried.",
        "My best friend moved far away this year.",
        "The garden my father planted is gone now.",
        "I tried my best, but it was not enough.",
        "The doctor said there was nothing more to do.",
        "Every photo of her makes me want to weep.",
    ),
    "angry": (
        "Stop that right now, I have had enough!",
        "How dare you read my private letters!",
        "You broke your promise again, this is outrageous.",
        "Get out of my office and do not come back!",
        "I am furious that they lied to us.",
        "Who keeps parking in my space every morning?",
        "That is the third time you have been late!",
        "Do not you ever speak to me like that!",
        "They cheated us out of our money.",
        "I will not tolerate this behaviour any longer.",
        "You ruined everything with your stupid mistake!",
        "Give me back my keys this minute!",
    ),
    "surprised": (
        "Wow, I never expected to see you here!",
        "Really, you built this boat all by yourself?",
        "No way, the bus arrived on time for once!",
        "Oh my, there are a hundred balloons in the room!",
        "What, the shop is giving everything away for free?",
        "I cannot believe it snowed in the middle of June!",
        "You mean we have a brand new baby brother?",
        "Look at that, a whale jumped right out of the water!",
        "Goodness, is that really the queen at the door?",
        "Wait, you are telling me the cat can open doors?",
        "Amazing, the old clock started ticking again!",
        "Whoa, I did not know you could play the piano!",
    ),
    "fear": (
        "Did you hear that noise coming from the cellar?",
        "Please do not leave me alone in the dark.",
        "Something is moving behind the curtain.",
        "I think somebody is following us home.",
        "The bridge is shaking and I cannot look down.",
        "Help, the water is rising much too fast!",
        "What if the plane does not land safely?",
        "There is a huge spider crawling up my arm.",
        "The door just opened by itself, I am terrified.",
        "Run, the fire is spreading to the barn!",
        "I am scared the storm will break the windows.",
        "Somebody is knocking, but nobody should be here.",
    ),
    "disgusted": (
        "Yuck, this milk smells completely rotten.",
        "There is a hair in my soup, how revolting.",
        "The bins have not been emptied for weeks, it stinks.",
        "Ugh, something slimy is stuck to my shoe.",
        "I cannot eat this, the meat is full of maggots.",
        "That public toilet was absolutely filthy.",
        "Gross, he sneezed right into the salad bowl.",
        "The fridge is full of mould and old fish.",
        "Please do not chew with your mouth open, it is vile.",
        "The pond was green and covered in dead flies.",
        "Eww, the dog rolled in something horrible again.",
        "This sticky table makes me feel sick.",
    ),
    "contempt": (
        "Oh please, as if your opinion matters to anyone.",
        "You call that work? A child could do better.",
        "I suppose you think you are very clever.",
        "How typical of him to take all the credit.",
        "Really, that is the best excuse you could find?",
        "Some people simply have no taste at all.",
        "I would not expect someone like you to understand.",
        "Your little plan is frankly beneath me.",
        "Well, that was a predictably pathetic effort.",
        "Do not bother explaining, I am not interested.",
        "They think a big car makes them important.",
        "Spare me your cheap advice, I know better.",
    ),
}


def corpus_sentences() -> tuple[str, ...]:
    """Every sentence a corpus can read, indexed by a clip's ``sentence`` number: :data:`SENTENCES` first (so the
    numbers of the default corpus keep their meaning), then each emotion's list of :data:`EMOTIONAL_SENTENCES` in
    the order of that mapping."""
    return SENTENCES + tuple(s for group in EMOTIONAL_SENTENCES.values() for s in group)


def emotion_sentence_numbers(emotion: str) -> tuple[int, ...]:
    """The numbers in :func:`corpus_sentences` of the sentences a clip in ``emotion`` reads with emotional text
    (``neutral``: those of :data:`SENTENCES`)."""
    if emotion not in EMOTIONAL_SENTENCES:
        return tuple(range(len(SENTENCES)))
    start = len(SENTENCES)
    for name, group in EMOTIONAL_SENTENCES.items():
        if name == emotion:
            return tuple(range(start, start + len(group)))
        start += len(group)
    raise AssertionError("unreachable")
